"""`xares tasks new`: a task config from local shards, its label key listed or used, its metric guessed."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from xares_llm.audio.demo_data import tone, write_tar
from xares_llm.cli.main import app
from xares_llm.tasks.scaffold import guess_metric
from xares_llm.tasks.schema import load_task, resolve_tasks


def write_shards(root, label_of, clips: int = 12) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for shard in range(2):
            samples = [
                (f"{split}{shard}_{i:03d}", tone(440.0, 0.2, rng), {"species": label_of(i), "site": f"s{i % 2}"})
                for i in range(clips)
            ]
            write_tar(root / split / f"{split}_{shard:03d}.tar", samples)


def new(root, *extra):
    args = ["tasks", "new", "birds", "--train", str(root / "train/*.tar"), "--test", str(root / "test/*.tar")]
    return CliRunner().invoke(app, [*args, "--out", str(root / "birds.yaml"), *extra])


def test_without_a_label_key_the_json_keys_are_listed(tmp_path):
    write_shards(tmp_path, lambda i: ["wren", "owl"][i % 2])
    result = new(tmp_path)
    assert result.exit_code == 1
    assert "--label-key" in result.output and "species (24 of 24 samples), e.g. 'wren'" in result.output
    assert not (tmp_path / "birds.yaml").exists()


def test_a_small_label_set_is_accuracy_and_the_files_work(tmp_path):
    write_shards(tmp_path, lambda i: ["wren", "owl", "kite"][i % 3])
    result = new(tmp_path, "--label-key", "species", "--prompt", "Which bird?")
    assert result.exit_code == 0, result.output
    assert "2 train shards (24 clips), 2 test shards (24 clips); metric accuracy" in result.output
    task = load_task(str(tmp_path / "birds.yaml"))
    assert (task.prompt, task.labels.train, task.track, task.metric.name) == (
        "Which bird?",
        "species",
        "user",
        "accuracy",
    )
    assert len(task.dataset.shards("train")) == 2
    assert [t.name for t in resolve_tasks(str(tmp_path / "birds_mix.yaml"))] == ["birds"]


def test_joined_labels_are_map_with_the_class_count(tmp_path):
    write_shards(tmp_path, lambda i: ["wren;owl", "kite", "owl;kite;crow"][i % 3])
    assert new(tmp_path, "--label-key", "species").exit_code == 0
    metric = load_task(str(tmp_path / "birds.yaml")).metric
    assert (metric.name, metric.args) == ("map", {"num_classes": 4})


@pytest.mark.parametrize(
    ("labels", "expected"),
    [(["a dog barks", "rain on a roof", "a car passes", "wind"], "iwer"), (["x", "y", "x", "y"], "accuracy")],
)
def test_guess_metric(labels, expected):
    assert guess_metric(labels)[0] == expected


def test_no_matching_shard_is_one_error(tmp_path):
    result = new(tmp_path, "--label-key", "species")
    assert result.exit_code == 1 and "--train" in result.output and "matches no file" in result.output
