"""One writer per run dir; checkpoint temps never outlive a failed or killed save; run-dir write errors are one line."""

from __future__ import annotations

import errno
import multiprocessing
from pathlib import Path

import pytest
from lockers import hold
from safetensors import SafetensorError
from typer.testing import CliRunner

from xares_llm.cli.main import app
from xares_llm.errors import XaresError
from xares_llm.lalm import checkpoints as checkpoint_io
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.run_lock import LOCK_NAME
from xares_llm.lalm.runs import CHECKPOINTS_DIR, LOG_FILE, checkpoints
from xares_llm.lalm.train import train
from xares_llm.tasks.schema import load_mixture

STEPS = 2


def recipe(**overrides):
    return load_recipe("demo", {"steps": STEPS, "checkpoint_every": 1, "batch_size": 4, **overrides})


def one_error(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and "Traceback" not in result.output and len(errors) == 1, result.output
    return " ".join(result.output.split())


def test_a_second_trainer_and_eval_refuse_a_run_being_trained(demo_store, tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    log = (run_dir / LOG_FILE).read_text()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    trainer = context.Process(target=hold, args=(str(run_dir / LOCK_NAME), ready))  # a trainer at work
    trainer.start()
    try:
        assert ready.wait(120)
        again = CliRunner().invoke(app, ["train", str(run_dir)])
        assert f"{run_dir} is being trained by pid {trainer.pid}" in one_error(again)
        evaluate = CliRunner().invoke(app, ["eval", str(run_dir)])
        assert "is being trained by" in one_error(evaluate) and "evaluate it when training finishes" in evaluate.output
    finally:
        trainer.kill()
        trainer.join()
    assert (run_dir / LOG_FILE).read_text() == log  # nothing was written twice
    assert CliRunner().invoke(app, ["train", str(run_dir)]).exit_code == 0  # a killed holder blocks nothing
    assert not (run_dir / f"{LOCK_NAME}.lock").exists()


def test_a_full_disk_at_checkpoint_is_one_line_and_leaves_no_temp(demo_store, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(checkpoint_io, "save_file", full)
    run_dir = tmp_path / "run"
    with pytest.raises(XaresError, match=r"cannot write checkpoint .*step-0000001: Error while serializing"):
        train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    assert not list((run_dir / CHECKPOINTS_DIR).iterdir())


def test_checkpoint_temps_of_a_killed_save_are_removed_on_the_next_start(demo_store, tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    left = run_dir / CHECKPOINTS_DIR / ".step-0000003-k1ll3d"  # what a kill mid-save leaves
    left.mkdir()
    (left / "trainable.safetensors").write_bytes(b"\0" * 1000)
    train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    assert not left.exists()
    assert [step for step, _ in checkpoints(run_dir)] == [1, 2]


def test_a_read_only_run_dir_is_one_line(demo_store, tmp_path, monkeypatch):
    run_dir = tmp_path / "mounted" / "run"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.is_relative_to(tmp_path / "mounted"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    args = ["train", demo_store.report.encoder_id, "--mixture", "demo", "--recipe", "demo", "--steps", "1"]
    result = CliRunner().invoke(app, [*args, "--cache", str(demo_store.cache_root), "--run-dir", str(run_dir)])
    assert f"cannot write run dir {run_dir}: Read-only file system" in one_error(result)
