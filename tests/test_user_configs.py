"""Your own task and mixture, outside the package: found by path or on the search path, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from xares_llm.audio.demo_data import tone, write_tar
from xares_llm.cli.main import app
from xares_llm.config import CONFIG_PATH_ENV
from xares_llm.errors import ConfigError
from xares_llm.tasks.schema import load_mixture, resolve_tasks

NOTES = {"low": 220.0, "mid": 440.0, "high": 880.0}


def write_user_task(folder, data) -> None:
    """A three-note task on local shards (absolute paths), its YAML and a mixture naming it by path."""
    rng = np.random.default_rng(1)
    for split, n in (("train", 24), ("test", 6)):
        samples = []
        for i in range(n):
            note = list(NOTES)[i % 3]
            samples.append((f"{split}{i:03d}", tone(NOTES[note], 0.5, rng), {"pitch": note}))
        write_tar(data / split / f"{split}_000.tar", samples)
    task = {
        "name": "my_notes",
        "track": "user",
        "dataset": {
            "name": "my_notes",
            "train": [str(data / "train/train_000.tar")],
            "test": [str(data / "test/test_000.tar")],
        },
        "labels": {"train": "pitch", "test": "pitch"},
        "prompt": "Which pitch?",
        "metric": {"name": "accuracy"},
    }
    (folder / "my_notes.yaml").write_text(yaml.safe_dump(task))
    mixture = {"name": "my_mix", "weights": {"my_notes.yaml": 1}, "evaluate": ["my_notes.yaml"]}
    (folder / "my_mix.yaml").write_text(yaml.safe_dump(mixture))


def test_a_user_task_and_mixture_run_end_to_end_and_rescore(tmp_path):
    configs, data = tmp_path / "configs", tmp_path / "data"
    configs.mkdir()
    write_user_task(configs, data)
    mixture = load_mixture(str(configs / "my_mix.yaml"))
    assert mixture.weights == {"my_notes": 1} and list(mixture.tasks) == ["my_notes"]
    assert [t.name for t in resolve_tasks(str(configs / "my_mix.yaml"))] == ["my_notes"]  # a mixture by content

    run_dir = tmp_path / "run"
    common = ["--cache", str(tmp_path / "cache")]
    args = ["run", "mel", "--mixture", str(configs / "my_mix.yaml"), "--recipe", "demo", "--steps", "6"]
    result = CliRunner().invoke(app, [*args, "--data", str(data), "--run-dir", str(run_dir), *common])
    assert result.exit_code == 0, result.output
    assert (run_dir / "tasks" / "my_notes.yaml").is_file()

    (configs / "my_notes.yaml").unlink()  # the run carries its own copy of the task
    result = CliRunner().invoke(app, ["score", str(run_dir)])
    assert result.exit_code == 0, result.output
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["tasks"]["my_notes"]["n_samples"] == 6 and "user" in scores["tracks"]


def test_names_resolve_on_the_search_path(tmp_path, monkeypatch):
    write_user_task(tmp_path, tmp_path / "data")
    with pytest.raises(ConfigError, match="unknown task 'my_notes'"):
        resolve_tasks("my_notes")
    monkeypatch.setenv(CONFIG_PATH_ENV, str(tmp_path))
    assert [t.name for t in resolve_tasks("my_notes")] == ["my_notes"]
    assert [t.name for t in resolve_tasks("my_mix")] == ["my_notes"]
    result = CliRunner().invoke(app, ["tasks"])
    assert result.exit_code == 0 and "my_notes" in result.output


def test_two_tasks_with_one_name_are_one_error_naming_both_files(tmp_path):
    write_user_task(tmp_path, tmp_path / "data")
    copy = yaml.safe_load((tmp_path / "my_notes.yaml").read_text())
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(copy))
    mixture = {"name": "dup", "weights": {"my_notes.yaml": 1, "other.yaml": 1}, "evaluate": ["my_notes.yaml"]}
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(mixture))
    with pytest.raises(ConfigError, match=r"two tasks are named 'my_notes': .*my_notes.yaml and .*other.yaml"):
        load_mixture(str(tmp_path / "dup.yaml"))
