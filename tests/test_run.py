"""`xares run` over a local mirror of two official tasks: real folder and shard names, real label keys."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from xares_llm.audio.demo_data import tone, write_tar
from xares_llm.cli.main import app
from xares_llm.tasks.schema import load_task

CLASSES = {"dog": 300.0, "rain": 900.0, "siren": 1500.0}


def write_mirror(root, clips_per_shard: int = 6) -> None:
    """ESC-50 (label in `label`, test in `text`) and LibriCount (`num_speakers` as a JSON number)."""
    rng = np.random.default_rng(0)
    for task_name in ("esc50", "libricount"):
        task = load_task(task_name)
        for split in ("train", "test"):
            for shard in task.dataset.shards(split):
                samples = []
                for i in range(clips_per_shard):
                    label = list(CLASSES)[i % 3]
                    audio = tone(CLASSES[label], rng.uniform(0.5, 1.5), rng)
                    if task_name == "esc50":
                        meta = {"label" if split == "train" else "text": label}
                    else:
                        meta = {"num_speakers": i % 3}
                    samples.append((f"{split}_{i:04d}", audio, meta))
                write_tar(root / shard, samples)


def test_run_over_a_local_mirror(tmp_path):
    data = tmp_path / "data"
    write_mirror(data)
    assert (data / "ESC-50/train/esc50_fold_1_0000000.tar.gz").is_file()
    mixture = tmp_path / "two.yaml"
    mixture.write_text("name: two\nweights: {esc50: 1, libricount: 1}\nevaluate: [esc50, libricount]\n")
    run_dir = tmp_path / "run"
    args = [
        "run",
        "mel",
        "--mixture",
        str(mixture),
        "--recipe",
        "demo",
        "--steps",
        "12",
        "--data",
        str(data),
        "--cache",
        str(tmp_path / "cache"),
        "--run-dir",
        str(run_dir),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    scores = json.loads((run_dir / "scores.json").read_text())
    assert set(scores["tasks"]) == {"esc50", "libricount"}
    assert scores["tasks"]["libricount"]["n_samples"] == 6
    assert "Whisper" in first.output and "0.635" in first.output  # published baselines beside our scores
    rows = [json.loads(line) for line in (run_dir / "predictions/libricount.jsonl").read_text().splitlines()]
    assert sorted({r["references"][0] for r in rows}) == ["0", "1", "2"]  # numbers became strings
    done = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and "scores" not in p.name}
    second = CliRunner().invoke(app, args)  # everything complete: nothing extracted, trained or decoded again
    assert second.exit_code == 0, second.output
    assert done == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and "scores" not in p.name}


def test_run_needs_a_track_or_mixture():
    result = CliRunner().invoke(app, ["run", "mel"])
    assert result.exit_code == 2
    assert "--track" in result.output


def test_single_task_runs_take_the_reference_step_counts(tmp_path, monkeypatch):
    from xares_llm.cli.run import single_task_plans

    plans = single_task_plans("esc50,cremad,nsynth", "demo", {})
    assert [(m.name, m.weights, m.evaluate, r.steps) for m, r in plans] == [
        ("esc50", {"esc50": 1.0}, ["esc50"], 2000),
        ("cremad", {"cremad": 1.0}, ["cremad"], 1000),
        ("nsynth", {"nsynth": 1.0}, ["nsynth"], 20000),
    ]
    assert [r.steps for _, r in single_task_plans("esc50", "demo", {"steps": 5})] == [5]

    data = tmp_path / "data"
    write_mirror(data, clips_per_shard=3)
    monkeypatch.chdir(tmp_path)
    args = ["run", "mel", "--tasks", "libricount", "--recipe", "demo", "--steps", "4", "--data", str(data)]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "libricount" in run_dir.name
    scores = json.loads((run_dir / "scores.json").read_text())
    assert set(scores["tasks"]) == {"libricount"} and scores["provenance"]["mixture"] == "libricount"
    assert "steps: 4 (reference: 2000)" in scores["differences"]
    assert not list((tmp_path / "cache" / "features").glob("*/esc50"))  # only the task's own data extracted
