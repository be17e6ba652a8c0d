"""The packaged task and mixture YAMLs against the reference's data and mixtures, written out here by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from xares_llm.cli import console
from xares_llm.cli.main import app
from xares_llm.config import packaged_names
from xares_llm.errors import ConfigError
from xares_llm.tasks.catalog import dataset_folder, mixture_summaries, task_summaries
from xares_llm.tasks.schema import load_mixture, load_task, mixture_weights, resolve_tasks

MAIN = "mispeech/xares_llm_data"
MECAT = "mispeech/MECAT-Caption"
ALL_KEYS = "text;caption;captions;label;labels"

# task -> (track, metric, metric args, repo folder, train shards, test shards, train keys, test keys)
SPEC = {
    "asvspoof2015": ("A", "accuracy", {}, "ASVSpoof2015", 18, 194, "binary_spoof", "binary_spoof"),
    "cremad": ("A", "accuracy", {}, "CremaD", 6, 2, "label", "label;labels"),
    "esc50": ("A", "accuracy", {}, "ESC-50", 4, 1, "label;labels", ALL_KEYS),
    "fluentspeechcommands": ("A", "accuracy", {}, "FluentSpeechCommands", 24, 4, ALL_KEYS, ALL_KEYS),
    "freemusicarchive": ("A", "accuracy", {}, "FreeMusicArchive", 64, 8, "genre", "genre"),
    "fsd50k": ("A", "map", {"num_classes": 200}, "FSD50k", 9, 32, "label;labels", "label;labels"),
    "fsdkaggle2018": ("A", "map", {"num_classes": 41}, "FSDKaggle2018", 21, 3, "label;labels", "label;labels"),
    "gtzan": ("A", "accuracy", {}, "GTZAN", 9, 1, "genre", "genre"),
    "libricount": ("A", "accuracy", {}, "LibriCount", 4, 1, "num_speakers", "num_speakers"),
    "nsynth": ("A", "accuracy", {}, "NSynth", 372, 6, "instrument_family_str", "instrument_family_str"),
    "speechcommandsv1": ("A", "accuracy", {}, "SpeechCommandsV1", 52, 7, ALL_KEYS, ALL_KEYS),
    "urbansound8k": ("A", "accuracy", {}, "Urbansound8k", 9, 1, "soundevent", "soundevent"),
    "vocalsound": ("A", "accuracy", {}, "VocalSound", 21, 5, ALL_KEYS, "labels"),
    "voxceleb1": ("A", "accuracy", {}, "VoxCeleb1", 40, 19, "label;labels", ALL_KEYS),
    "voxlingua33": ("A", "accuracy", {}, "VoxLingua33", 210, 6, "label;labels", ALL_KEYS),
    "aishell1": ("B", "icer", {}, "AISHELL-1", 174, 12, "text", "text"),
    "clotho": ("B", "fense", {}, "Clotho", 18, 5, ALL_KEYS, "caption;captions"),
    "librispeech": ("B", "iwer", {}, "LibriSpeech", 20, 20, "trans", "trans"),
    "mecat": ("B", "date", {}, None, 10, 10, "long", "long"),
    "songdescriber": ("B", "fense", {}, "Songdescriber", 2, 2, "caption", "captions"),
}
MECAT_FOLDERS = {"000", "00A", "0M0", "0MA", "S00", "S0A", "SM0", "SMA"}

# the reference mixture weights; "by_shards" = the task's share of all train shards in the mixture.
TASK1 = {
    "asvspoof2015": 1, "cremad": 1, "esc50": 0.5, "fluentspeechcommands": 2, "freemusicarchive": 2, "fsd50k": 3,
    "fsdkaggle2018": 2, "gtzan": 1, "libricount": 1, "nsynth": 3, "speechcommandsv1": 1, "urbansound8k": 1,
    "vocalsound": 2, "voxceleb1": 2, "voxlingua33": 3,
}  # fmt: skip
TASK2 = {"aishell1": 2, "clotho": 1, "librispeech": 2, "mecat": 3, "songdescriber": 1}
ALL_NUMBERS = {
    "nsynth": 0.03, "speechcommandsv1": 0.05, "voxlingua33": 0.2, "aishell1": 0.05, "clotho": 0.02,
    "librispeech": 0.05, "mecat": 0.2,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SPEC))
def test_task_matches_spec(name: str) -> None:
    track, metric, args, folder, n_train, n_test, keys_train, keys_test = SPEC[name]
    task = load_task(name)
    assert (task.name, task.track, task.metric.name, task.metric.args) == (name, track, metric, args)
    assert (task.labels.train, task.labels.test) == (keys_train, keys_test)
    train, test = task.dataset.shards("train"), task.dataset.shards("test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert len(set(train)) == n_train and len(set(test)) == n_test and not set(train) & set(test)
    assert all(p.endswith(".tar.gz") for p in train + test)
    if name == "mecat":
        assert task.dataset.repo == MECAT
        assert {dataset_folder(p) for p in train} == {dataset_folder(p) for p in test} == MECAT_FOLDERS
    else:
        assert task.dataset.repo == MAIN
        assert all(p.startswith(f"{folder}/train/") for p in train)
        assert all(p.startswith(f"{folder}/test/") for p in test)


def test_shard_names_expand_as_spec_writes_them() -> None:
    """Zero padding of the brace patterns is kept , checked on first and last names."""
    expected = {
        "asvspoof2015": (
            "ASVSpoof2015/test/asvspoof_eval_000000.tar.gz",
            "ASVSpoof2015/test/asvspoof_eval_000193.tar.gz",
        ),
        "nsynth": ("NSynth/train/train_000000.tar.gz", "NSynth/train/train_000371.tar.gz"),
        "libricount": ("LibriCount/train/libricount_fold00.tar.gz", "LibriCount/train/libricount_fold03.tar.gz"),
        "urbansound8k": ("Urbansound8k/test/urbansound_fold10_0000000.tar.gz",) * 2,
        "librispeech": ("LibriSpeech/test/test-clean-000000.tar.gz", "LibriSpeech/test/test-clean-000019.tar.gz"),
    }
    for name, (first, last) in expected.items():
        task = load_task(name)
        split = "test" if "/test/" in first else "train"
        shards = task.dataset.shards(split)
        assert (shards[0], shards[-1]) == (first, last)
    mecat = load_task("mecat").dataset.shards("train")
    assert "S00/train_0001-0000000.tar.gz" in mecat and "SM0/train_0001-0000000.tar.gz" in mecat
    assert "000/train_0000-0000000.tar.gz" in mecat and "000/train_0001-0000000.tar.gz" not in mecat


def test_prompts_unique_and_metrics_known() -> None:
    tasks = [load_task(n) for n in packaged_names("tasks")]
    assert set(SPEC) <= {t.name for t in tasks}
    prompts = [t.prompt for t in tasks]
    assert len(set(prompts)) == len(prompts)
    assert {t.metric.name for t in tasks if t.name in SPEC} == {"accuracy", "map", "iwer", "icer", "fense", "date"}


@pytest.mark.parametrize(("name", "weights", "track"), [("task1", TASK1, "A"), ("task2", TASK2, "B")])
def test_track_mixtures(name: str, weights: dict[str, float], track: str) -> None:
    mixture = load_mixture(name)
    assert dict(mixture.weights) == weights
    assert set(mixture.evaluate) == {t for t, spec in SPEC.items() if spec[0] == track}
    total = sum(weights.values())
    assert mixture_weights(mixture) == pytest.approx({t: w / total for t, w in weights.items()})


def test_all_mixture_by_shards_from_spec_counts() -> None:
    mixture = load_mixture("all")
    assert set(mixture.weights) == set(mixture.evaluate) == set(SPEC)
    assert {t: w for t, w in mixture.weights.items() if w != "by_shards"} == ALL_NUMBERS
    train_shards = {t: spec[4] for t, spec in SPEC.items()}  # the reference's counts, not the YAML's
    total_shards = sum(train_shards.values())
    raw = {t: ALL_NUMBERS.get(t, train_shards[t] / total_shards) for t in SPEC}
    expected = {t: w / sum(raw.values()) for t, w in raw.items()}
    got = mixture_weights(mixture)
    assert sum(got.values()) == pytest.approx(1.0)
    assert got == pytest.approx(expected)
    assert got["esc50"] / got["gtzan"] == pytest.approx(4 / 9)  # two by_shards tasks: ratio of shard counts


def test_resolve_mixture_names() -> None:
    assert [t.name for t in resolve_tasks("task2")] == list(TASK2)
    assert len(resolve_tasks("all")) == 20
    assert [t.name for t in resolve_tasks("gtzan,task2,gtzan")] == ["gtzan", *TASK2]


def test_broken_task_yaml_names_file_field_and_choices(tmp_path: Path) -> None:
    text = load_task("esc50").model_dump()
    text["track"] = "C"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(text))
    with pytest.raises(ConfigError) as info:
        load_task(str(path))
    message = str(info.value)
    assert str(path) in message and "field 'track'" in message and "'A', 'B', 'demo' or 'user'" in message
    assert "'C'" in message


def test_mixture_naming_unknown_task_fails(tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text("name: mix\nweights: {esc50: 1, esc5O: 1}\nevaluate: [esc50]\n")
    with pytest.raises(ConfigError, match=r"unknown task 'esc5O'.*Did you mean esc50"):
        load_mixture(str(path))


def test_catalog_rows() -> None:
    rows = {r.name: r for r in task_summaries()}
    assert rows["fsd50k"].metric == "map (num_classes=200)"
    assert (rows["nsynth"].train_shards, rows["nsynth"].test_shards, rows["nsynth"].folders) == (372, 6, ("NSynth",))
    assert set(rows["mecat"].folders) == MECAT_FOLDERS
    order = [r.track for r in task_summaries()]
    assert order == sorted(order, key={"A": 0, "B": 1, "demo": 2}.get)
    mixtures = {m.name: m for m in mixture_summaries()}
    assert [m.name for m in mixture_summaries()][:3] == ["task1", "task2", "all"]
    assert set(mixtures["all"].by_shards) == set(SPEC) - set(ALL_NUMBERS)
    assert sum(mixtures["task1"].weights.values()) == pytest.approx(1.0)


def test_xares_tasks_prints_both_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console.out, "width", 200)
    result = CliRunner().invoke(app, ["tasks"])
    assert result.exit_code == 0, result.output
    for name in SPEC:
        assert name in result.output
    assert "map (num_classes=41)" in result.output and "0M0" in result.output
    assert "Mixtures" in result.output and "20 tasks" in result.output and "15 tasks" in result.output
    assert "0.3333" in result.output  # mecat in task2: 3 / 9
