"""`xares run` over a local mirror of two official tasks: real folder and shard names, real label keys."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from xares_llm.cli.main import app
from xares_llm.demo_data import tone, write_tar
from xares_llm.tasks import load_task

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
