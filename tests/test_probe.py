"""`xares probe`: light heads on the demo store and on small stores with known answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from xares_llm.audio.demo_data import shard_relative_path, write_shard
from xares_llm.cache import EncoderInfo, FeatureSplit, PartBuffer, SourceInfo, write_part
from xares_llm.cache.format import ENCODER_FILE, encoder_dir, part_name, split_dir
from xares_llm.cli.console import out
from xares_llm.cli.main import app
from xares_llm.extract.run import extract
from xares_llm.metrics import MetricOptions
from xares_llm.metrics.dummies import write_tiny_sbert
from xares_llm.probe.embeddings import cache_folder, pooled_split, store_key
from xares_llm.probe.runner import ProbeOptions, probe
from xares_llm.scoring.score import score_run
from xares_llm.tasks.schema import load_task, resolve_tasks

CPU = {"device": "cpu", "seed": 0}


@pytest.fixture(scope="module")
def demo_probe(demo_store, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("probe") / "demo"
    results = probe(
        demo_store.cache_root, demo_store.report.encoder_id, "mel", resolve_tasks("demo"), out_dir, ProbeOptions(**CPU)
    )
    return out_dir, results


def test_demo_probe_learns_pitch_and_transcribes_melody(demo_probe):
    _, results = demo_probe
    assert not results.skipped
    pitch = results.tasks["demo_pitch"]
    assert set(pitch.heads) == {"linear", "mlp", "knn"}
    for head in pitch.heads.values():
        assert head.score >= 0.6  # 8 notes: chance is 0.125
    melody = results.tasks["demo_melody"]
    assert set(melody.heads) == {"ctc"} and melody.family == "asr"
    assert melody.heads["ctc"].score > 0.5
    assert melody.heads["ctc"].hyperparameters["left_out"]["too_short_pairs"] == 0
    events = results.tasks["demo_events"]
    assert events.metric == "map" and events.heads["mlp"].score > 0.5


def test_probe_outputs_rescore_like_a_run(demo_probe, demo_store):
    out_dir, results = demo_probe
    written = json.loads((out_dir / "probe_scores.json").read_text())
    assert written["encoder_id"] == demo_store.report.encoder_id and written["device"] == "cpu"
    assert written["seed"] == 0 and written["versions"]["torch"] and "not LALM" in written["note"]
    pitch = written["tasks"]["demo_pitch"]
    assert pitch["n_train"] == 80 and pitch["n_test"] == 16 and pitch["primary_head"] == "mlp"
    assert pitch["heads"]["mlp"]["hyperparameters"]["lr"] in pitch["heads"]["mlp"]["hyperparameters"]["grid_lr"]
    assert pitch["heads"]["knn"]["hyperparameters"]["k"] in (1, 5, 10, 20)
    assert pitch["embeddings"]["train"]["embedding_cache"] in ("written", "hit")
    for head in ("linear", "mlp", "knn", "ctc"):
        rescored = score_run(out_dir / head)
        for task, probe_task in results.tasks.items():
            if head in probe_task.heads:
                assert rescored.tasks[task].score == pytest.approx(probe_task.heads[head].score)
                assert rescored.tasks[task].n_samples == probe_task.n_test
        assert not rescored.comparable_to_reference


def test_same_seed_same_scores_from_the_embedding_cache(demo_probe, demo_store, tmp_path):
    _, first = demo_probe
    tasks = resolve_tasks("demo_pitch,demo_events")
    again = probe(
        demo_store.cache_root,
        demo_store.report.encoder_id,
        "mel",
        tasks,
        tmp_path,
        ProbeOptions(heads=("linear", "knn"), **CPU),
    )
    for name, task in again.tasks.items():
        assert task.embeddings["train"]["embedding_cache"] == "hit"
        for head, score in task.heads.items():
            assert score.score == first.tasks[name].heads[head].score
            assert score.hyperparameters == first.tasks[name].heads[head].hyperparameters


def test_counting_well_above_chance(tmp_path):
    """demo_count needs more clips than the session demo store holds: 200 train, 50 test."""
    data = tmp_path / "data"
    for split, n_clips in (("train", 100), ("test", 25)):
        for index in range(2):
            write_shard(data / shard_relative_path("demo_count", split, index), "demo_count", split, index, n_clips)
    task = load_task("demo_count")
    report = extract("mel", [task], tmp_path / "cache", data, dtype="float32")
    results = probe(
        tmp_path / "cache", report.encoder_id, "mel", [task], tmp_path / "out", ProbeOptions(heads=("mlp",), **CPU)
    )
    assert results.tasks["demo_count"].heads["mlp"].score >= 0.4  # 5 counts: chance is 0.2


def test_bad_tasks_are_named_and_the_others_still_run(demo_store, tmp_path, monkeypatch):
    absent = task_yaml(tmp_path, "absent_probe", "no_such_dataset", "accuracy", {}, "note")
    captions = task_yaml(tmp_path, "melody_captions", "demo_melody", "fense", {}, "text", shards="demo_melody")
    monkeypatch.setattr(out, "_width", 200)
    args = ["probe", demo_store.report.encoder_id, "--tasks", f"demo_pitch,{absent},{captions}", "--heads", "linear"]
    args += ["--cache", str(demo_store.cache_root), "--out", str(tmp_path / "out"), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "probe_scores.json").read_text())
    assert list(written["tasks"]) == ["demo_pitch"]
    assert "absent_probe: no usable train split" in written["skipped"]["absent_probe"]
    assert "melody_captions: captioning labels fit none of --heads linear" in written["skipped"]["melody_captions"]
    assert "\n" not in "".join(written["skipped"].values())
    assert "not LALM scores" in result.output and "Whisper-Base" not in result.output  # no baseline has these tasks
    bad = CliRunner().invoke(app, [*args[:4], "--heads", "linear,svm"])
    assert bad.exit_code == 1 and "unknown head(s) svm" in bad.output


@dataclass
class SmallStore:
    root: Path
    encoder_id: str


def write_store(root: Path, dataset: str, splits: dict[str, list[tuple[np.ndarray, dict]]]) -> SmallStore:
    """A store of hand-made frames: one part per split, and the encoder.json a probe reads."""
    dim = next(iter(splits.values()))[0][0].shape[1]
    info = EncoderInfo(
        "handmade-000000000000",
        "handmade",
        "tests.Handmade",
        {},
        "0" * 64,
        dim,
        25.0,
        16000,
        "float32",
        encoder_precision="fp32",
        windowing={"max_input_seconds": None},
        xares_version="test",
    )
    encoder_dir(root, info.encoder_id).mkdir(parents=True, exist_ok=True)
    (encoder_dir(root, info.encoder_id) / ENCODER_FILE).write_text(info.to_json())
    for split, clips in splits.items():
        add_part(root, info.encoder_id, dataset, split, f"{dataset}/{split}/part0.tar", clips)
    return SmallStore(root, info.encoder_id)


def add_part(root: Path, encoder_id: str, dataset: str, split: str, shard: str, clips) -> None:
    buffer = PartBuffer(dim=clips[0][0].shape[1], dtype="float32")
    for i, (frames, meta) in enumerate(clips):
        buffer.add(f"{split}_{i:04d}", frames, json.dumps(meta), 16000)
    write_part(split_dir(root, encoder_id, dataset, split) / part_name(shard), buffer, SourceInfo(shard, 1, "0", 0))


def task_yaml(folder: Path, name: str, dataset: str, metric: str, args: dict, key: str, shards: str | None = None):
    def paths(split: str) -> list[str]:
        if shards:  # the demo task's own shard names
            return [shard_relative_path(shards, split, i) for i in range(2)]
        return [f"{dataset}/{split}/part0.tar"]

    config = {
        "name": name,
        "track": "A",
        "dataset": {"name": dataset, "repo": None, "train": paths("train"), "test": paths("test")},
        "labels": {"train": key, "test": key},
        "prompt": "Probe.",
        "metric": {"name": metric, "args": args},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_multilabel_heads_on_separable_features(tmp_path):
    rng = np.random.default_rng(0)
    names = ["bark", "rain", "siren", "speech", "engine", "bird"]
    prototypes = rng.normal(size=(len(names), 16)).astype(np.float32)

    def clips(n: int) -> list[tuple[np.ndarray, dict]]:
        made = []
        for _ in range(n):
            present = np.flatnonzero(rng.random(len(names)) < 0.35).tolist() or [int(rng.integers(len(names)))]
            centre = prototypes[present].sum(axis=0)
            frames = centre + 0.1 * rng.normal(size=(int(rng.integers(5, 20)), 16)).astype(np.float32)
            made.append((frames.astype(np.float32), {"labels": ";".join(names[i] for i in present)}))
        return made

    store = write_store(tmp_path, "sep", {"train": clips(240), "test": clips(60)})
    task = load_task(task_yaml(tmp_path, "sep_tags", "sep", "map", {"num_classes": 6}, "labels"))
    results = probe(
        store.root,
        store.encoder_id,
        "handmade",
        [task],
        tmp_path / "out",
        ProbeOptions(heads=("linear", "mlp", "knn"), **CPU),
    )
    heads = results.tasks["sep_tags"].heads
    assert heads["linear"].score > 0.9 and heads["mlp"].score > 0.9 and heads["knn"].score > 0.7
    first = json.loads((tmp_path / "out" / "linear" / "predictions" / "sep_tags.jsonl").read_text().splitlines()[0])
    assert set(first["prediction"].split(";")) <= set(names)


def test_nearest_neighbour_caption_of_an_identical_clip(tmp_path):
    rng = np.random.default_rng(1)
    captions = ["a dog barks twice", "rain on a roof", "a car passes by", "birds sing at dawn", "a door creaks"]
    train = [(rng.normal(size=(int(rng.integers(4, 12)), 8)).astype(np.float32), {"caption": c}) for c in captions]
    test = [(train[i][0].copy(), {"caption": "reference " + captions[i]}) for i in (3, 0, 4)]
    store = write_store(tmp_path, "capset", {"train": train, "test": test})
    task = load_task(task_yaml(tmp_path, "capset_fense", "capset", "fense", {}, "caption"))
    sbert = write_tiny_sbert(tmp_path / "sbert", {w for c in captions for w in [*c.split(), "reference"]})
    options = ProbeOptions(metric_options=MetricOptions(sbert=str(sbert), echecker="none"), **CPU)
    results = probe(store.root, store.encoder_id, "handmade", [task], tmp_path / "out", options)
    knn_head = results.tasks["capset_fense"].heads["knn"]
    assert knn_head.settings["official"] is False  # substitute model recorded, as in `xares score`
    rows = [json.loads(line) for line in (tmp_path / "out" / "knn" / "predictions" / "capset_fense.jsonl").open()]
    assert [r["prediction"] for r in rows] == [captions[3], captions[0], captions[4]]


def test_embedding_cache_follows_the_parts(tmp_path):
    rng = np.random.default_rng(2)
    frames = [rng.normal(size=(n, 4)).astype(np.float32) for n in (3, 5, 2)]
    frames[1][2, 0] = np.nan  # a non-finite frame is left out of its clip and counted
    store = write_store(tmp_path, "pool", {"train": [(f, {"label": "x"}) for f in frames]})
    split = FeatureSplit(store.root, store.encoder_id, "pool", "train")
    pooled = pooled_split(store.root, store.encoder_id, "pool", "train", split)
    assert pooled.cache == "written" and pooled.nonfinite_frames == 1 and pooled.empty == 0
    np.testing.assert_allclose(pooled.embeddings("mean")[0], frames[0].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        pooled.embeddings("meanstd")[1][4:], np.delete(frames[1], 2, axis=0).std(axis=0), rtol=1e-5
    )
    assert pooled_split(store.root, store.encoder_id, "pool", "train", split).cache == "hit"
    add_part(store.root, store.encoder_id, "pool", "train", "pool/train/part1.tar", [(frames[0] + 1, {"label": "y"})])
    grown = FeatureSplit(store.root, store.encoder_id, "pool", "train")
    again = pooled_split(store.root, store.encoder_id, "pool", "train", grown)
    assert again.cache == "written" and again.stats.shape[0] == 4
    folder = cache_folder(store.root, store.encoder_id)
    new_key, _ = store_key(store.root, store.encoder_id, grown)
    assert [p.name for p in folder.glob("*.npy")] == [f"pool@train-{new_key}.npy"]  # the stale file is gone
    assert not any(p.is_dir() for p in folder.iterdir())  # no folders that listings would take for datasets
    assert not any(p.name.startswith(".probe") for part in grown.parts for p in part.iterdir())
