"""`xares run mel --track A|B` end to end over local mirrors of every dataset of the track.

One short clip per shard, under the real folder and shard names (over a thousand shards for Track A,
NSynth's 372 among them) and the real label keys of each split, so every task config is exercised.
Track B's caption metrics run offline with a tiny substitute Sentence-BERT and no error checker.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from xares_llm.audio.demo_data import tone, write_tar
from xares_llm.cli.main import app
from xares_llm.metrics.dummies import write_tiny_sbert
from xares_llm.tasks.schema import load_mixture, load_task

pytestmark = pytest.mark.slow


def write_track_mirror(root, mixture: str) -> int:
    rng = np.random.default_rng(0)
    shards = 0
    for name in load_mixture(mixture).evaluate:
        task = load_task(name)
        for split in ("train", "test"):
            key = task.labels.keys(split)[0]
            for index, shard in enumerate(task.dataset.shards(split)):
                label = f"class {index % 2}" if task.metric.name != "map" else "Dog;Bark"
                audio = tone(300.0 + 400 * (index % 2), 0.4, rng)
                write_tar(root / shard, [(f"{split}_{index:05d}", audio, {key: label})])
                shards += 1
    return shards


@pytest.mark.parametrize(
    ("track", "mixture", "task", "test_shards"), [("A", "task1", "asvspoof2015", 194), ("B", "task2", "mecat", 10)]
)
def test_track_over_a_full_local_mirror(tmp_path, track, mixture, task, test_shards):
    data = tmp_path / "data"
    assert write_track_mirror(data, mixture) > (1000 if track == "A" else 250)
    run_dir = tmp_path / "run"
    args = ["run", "mel", "--track", track, "--recipe", "demo", "--steps", "6", "--data", str(data)]
    args += ["--cache", str(tmp_path / "cache"), "--run-dir", str(run_dir)]
    if track == "B":
        sbert = write_tiny_sbert(tmp_path / "sbert", ["class", "0", "1"])
        args += ["--sbert", str(sbert), "--echecker", "none"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads((run_dir / "scores.json").read_text())
    assert set(scores["tasks"]) == set(load_mixture(mixture).evaluate)
    assert scores["tasks"][task]["n_samples"] == test_shards  # one clip per test shard
    assert set(scores["tracks"]) == {track}
