"""A run's recorded status after Ctrl-C, a signal or an error, and how `xares runs` tells a dead run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_train_eval import losses, recipe, trained_run  # noqa: F401  (the fixture)
from xares_llm.cli.main import app
from xares_llm.lalm.runs import checkpoints, read_run
from xares_llm.lalm.train import train
from xares_llm.tasks.schema import load_mixture


class SignalAt:
    """A progress reporter that sends this process a real signal at one step, as Ctrl-C or Slurm would."""

    def __init__(self, at: int, signum: int = signal.SIGINT):
        self.at, self.signum = at, signum

    def start(self, first_step: int, total_steps: int) -> None: ...

    def step(self, step: int, loss: float, lr: float) -> None:
        if step == self.at:
            os.kill(os.getpid(), self.signum)


class FailAt(SignalAt):
    def step(self, step: int, loss: float, lr: float) -> None:
        if step == self.at:
            raise RuntimeError("disk full")


def run_args(demo_store) -> tuple:
    return load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_its_step_and_the_run_resumes_exactly(trained_run, demo_store, tmp_path, signum):  # noqa: F811
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(run_dir, recipe(), *run_args(demo_store), progress=SignalAt(13, signum))
    info = read_run(run_dir)
    assert info.status == "interrupted" and info.steps_done == 13  # not 8, the last regular checkpoint
    assert signal.Signals(signum).name in info.stopped
    assert 13 in [step for step, _ in checkpoints(run_dir)]
    assert train(run_dir, recipe(), *run_args(demo_store)).resumed_from == 13
    assert losses(run_dir) == losses(trained_run)  # nothing lost, nothing changed
    assert read_run(run_dir).status == "finished"


def test_an_error_records_failed_with_its_message(demo_store, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(RuntimeError):
        train(run_dir, recipe(), *run_args(demo_store), progress=FailAt(5))
    info = read_run(run_dir)
    assert info.status == "failed" and info.stopped == "disk full"
    listed = CliRunner().invoke(app, ["runs", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["run"], r["status"], r["stopped"]) for r in json.loads(listed.output)] == [
        ("run", "failed", "disk full")
    ]


def running_record(run_dir: Path, owner: dict) -> None:
    run_dir.mkdir(parents=True)
    fields = {"encoder_id": "mel-" + "0123456789abcdef" * 2, "encoder_spec": "mel", "mixture": "demo",
              "train_tasks": {"demo_pitch": 1.0}, "eval_tasks": ["demo_pitch"], "input_dim": 8,
              "frame_rate_hz": 25.0, "steps": 100, "status": "running", "steps_done": 40, "owner": owner}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(fields))


def test_runs_tells_a_stale_running_run_from_a_live_one(tmp_path):
    from xares_llm.cache.locks import owner_record

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    running_record(tmp_path / "killed", {**owner_record(), "pid": int(dead.stdout)})
    running_record(tmp_path / "live", owner_record())  # this process
    running_record(tmp_path / "reused-pid", {**owner_record(), "start": -1})  # same pid, another start time
    listed = CliRunner().invoke(app, ["runs", str(tmp_path), "--json"])
    assert listed.exit_code == 0, listed.output
    status = {row["run"]: row["status"] for row in json.loads(listed.output)}
    assert status == {"killed": "stale", "live": "running", "reused-pid": "stale"}


def test_runs_prints_whole_ids_off_a_terminal(tmp_path):
    from xares_llm.cache.locks import owner_record

    name = "mel-0123456789abcdef0123456789abcdef-demo-demo-a1b2c3-with-a-long-name"
    running_record(tmp_path / name, owner_record())
    listed = CliRunner().invoke(app, ["runs", str(tmp_path)], env={"COLUMNS": "80"})
    assert listed.exit_code == 0, listed.output
    assert name in listed.output and "mel-" + "0123456789abcdef" * 2 in listed.output
    assert "…" not in listed.output


def test_comparability_is_one_short_line_naming_where_the_list_is(tmp_path):
    from xares_llm.cli.render import comparability_line
    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.scoring.reference import recipe_differences
    from xares_llm.scoring.score import Scores

    reasons = recipe_differences(load_recipe("demo"))
    assert reasons[0] == "recipe llm.name: None (reference: HuggingFaceTB/SmolLM2-135M)"
    assert all(len(line) < 100 and "{" not in line for line in reasons)
    line = comparability_line(Scores(tasks={}, differences=reasons), tmp_path / "run")
    assert "\n" not in line and line.startswith("not comparable with the reference system: recipe llm.name")
    assert f"{len(reasons) - 1} more reasons in {tmp_path / 'run' / 'scores.json'}" in line


def test_resume_is_announced_before_training_goes_on(demo_store, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(run_dir, recipe(), *run_args(demo_store), progress=SignalAt(5))
    result = CliRunner().invoke(app, ["train", str(run_dir)], env={"XARES_PROGRESS_SECONDS": "0"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    resumed = next(i for i, line in enumerate(lines) if line.startswith("resumed from step 5 of"))
    first_step = next(i for i, line in enumerate(lines) if line.startswith("train: step"))
    assert resumed < first_step
