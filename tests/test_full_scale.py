"""The full-scale rehearsal's replica has the official shapes; its store opens to the same counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.full_scale import Manifest, budgets, table
from benchmarks.replica import SHAPES, build_replica, class_names, official_tasks
from benchmarks.scale_probes import open_stores
from xares_llm.audio.shards import read_samples
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import load_task

SCALE = 0.001
TASKS = ["fsd50k", "voxceleb1", "clotho", "mecat", "aishell1", "esc50"]


@pytest.fixture(scope="module")
def replica(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("replica")
    return root, build_replica(root, scale=SCALE, seconds_scale=0.01, tasks=TASKS)


def test_every_official_task_has_a_shape():
    assert sorted(t.name for t in official_tasks()) == sorted(SHAPES)


def test_replica_has_the_real_shard_lists_and_scaled_counts(replica):
    root, manifest = replica
    assert Manifest.load(root / "replica.json") == manifest
    for name in TASKS:
        task = load_task(name)
        for split in ("train", "test"):
            shards = task.dataset.shards(split)
            assert all((root / s).is_file() for s in shards)
            clips = sum(1 for s in shards for _ in read_samples(root / s))
            expected = max(round(getattr(SHAPES[name], split) * SCALE), len(shards))
            entry = manifest.counts[name][split]
            assert (entry["shards"], entry["clips"], clips) == (len(shards), expected, expected)
            per_clip = {"clotho": 5, "mecat": 3}.get(name, 1)
            assert entry["targets"] == per_clip * expected


def test_replica_labels_have_the_real_sets_and_shapes(replica):
    root, _ = replica
    fsd = load_task("fsd50k")
    allowed = set(class_names(200))
    for split in ("train", "test"):
        for task_name, per_clip in (("clotho", 5), ("mecat", 3)):
            task = load_task(task_name)
            for sample in read_samples(root / task.dataset.shards(split)[0]):
                assert len(task.split_targets(json.loads(sample.files["json"]), split).texts) == per_clip
    for sample in read_samples(root / fsd.dataset.shards("test")[0]):
        (text,) = fsd.split_targets(json.loads(sample.files["json"]), "test").texts
        assert set(text.split(";")) <= allowed and 1 <= len(text.split(";")) <= 3
    aishell = load_task("aishell1")
    for sample in read_samples(root / aishell.dataset.shards("test")[0]):
        (text,) = aishell.split_targets(json.loads(sample.files["json"]), "test").texts
        assert all("\u4e00" <= c <= "\u9fff" for c in text)
    vox = load_task("voxceleb1")
    samples = read_samples(root / vox.dataset.shards("test")[0])
    answers = {vox.split_targets(json.loads(s.files["json"]), "test").texts[0] for s in samples}
    assert answers <= {"same", "different"}


def test_store_of_the_replica_opens_to_its_counts(replica, tmp_path):
    root, manifest = replica
    tasks = [load_task("esc50"), load_task("fsd50k")]
    report = extract("mel", tasks, tmp_path / "cache", root, splits=["train"], device="cpu")
    mixture = tmp_path / "two.yaml"
    mixture.write_text("name: two\nweights: {esc50: 1, fsd50k: 3}\nevaluate: [esc50, fsd50k]\n")
    out = open_stores(str(tmp_path / "cache"), report.encoder_id, str(mixture))
    assert out["clips"] == manifest.counts["esc50"]["train"]["clips"] + manifest.counts["fsd50k"]["train"]["clips"]
    assert out["parts"] == manifest.counts["esc50"]["train"]["shards"] + manifest.counts["fsd50k"]["train"]["shards"]
    assert out["targets"] == out["clips"]  # one label string per clip in both tasks


def test_budgets_are_judged_only_at_full_counts():
    stage = {
        "name": "score_a1",
        "rc": 0,
        "wall_s": 200.0,
        "cpu_s": 70.0,
        "peak_rss_mb": 10.0,
        "measured": {},
        "count": {},
    }
    stage |= {"load_before": [1.0], "load_after": [1.0]}
    (row,) = budgets([stage], full=True)
    assert (row["value"], row["wall_s"], row["met"]) == (70.0, 200.0, False)  # CPU judged, wall shown
    (row,) = budgets([stage], full=False)
    assert row["met"] is None
    lines = table({"stages": [stage], "budgets": budgets([stage], full=True)})
    assert any("score Track A" in line and "**no**" in line for line in lines)


def test_full_count_parts_and_widened_runs(tmp_path):
    from benchmarks.full_counts import widen_run, write_part
    from benchmarks.replica import shard_jobs
    from xares_llm.cache.reader import FeatureSplit

    info = {"encoder_id": "mel-x", "output_dim": 8, "frame_rate_hz": 25.0, "dtype": "float16"}
    (job,) = [j for j in shard_jobs(Path(), 0.001, 0.02, ["esc50"]) if j.split == "test"]
    write_part(tmp_path / "cache", info, job)
    store = FeatureSplit(tmp_path / "cache", "mel-x", "esc50", "test")
    assert len(store) == job.clips and store.part_attrs[0].source.name == job.path
    assert {m[job.label_key] for m in store.iter_meta()} <= set(class_names(50))
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    rows = [{"key": f"k{i}", "prediction": "a", "references": ["a", "b"]} for i in range(3)]
    (run / "predictions" / "clotho.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert widen_run(run, tmp_path / "wide") == 2 * SHAPES["clotho"].test
    widened = [json.loads(line) for line in (tmp_path / "wide" / "predictions" / "clotho.jsonl").open()]
    assert len(widened) == SHAPES["clotho"].test and len({r["key"] for r in widened}) == len(widened)
