"""Training logs: log.jsonl stays readable by `read_log` and the report; TensorBoard gets the same scalars."""

from __future__ import annotations

import math

import pytest

from xares_llm.errors import XaresError
from xares_llm.lalm.runs import LOG_FILE, read_log
from xares_llm.lalm.train_log import TENSORBOARD_DIR, StepRecord, open_train_log, parse_log_kinds


def records() -> list[StepRecord]:
    return [
        StepRecord(1, 2.5, 1e-4, 0.9),
        StepRecord(2, 2.0, 2e-4, 0.8, tokens_per_s=1500.0, task_loss={"esc50": 1.5, "cremad": 2.5}),
        StepRecord(3, math.nan, 3e-4, 0.7),
    ]


def test_jsonl_lines_keep_the_four_fields_and_add_the_optional_ones(tmp_path):
    with open_train_log(tmp_path) as log:
        for record in records():
            log.write(record)
    entries = read_log(tmp_path / LOG_FILE)
    assert entries[0] == {"step": 1, "loss": 2.5, "lr": 1e-4, "grad_norm": 0.9}
    assert entries[1]["tokens_per_s"] == 1500.0 and entries[1]["task_loss"] == {"esc50": 1.5, "cremad": 2.5}
    assert math.isnan(entries[2]["loss"])  # the source of truth keeps what training saw
    assert not (tmp_path / TENSORBOARD_DIR).exists()


def test_tensorboard_event_files_hold_every_scalar(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open_train_log(tmp_path, parse_log_kinds("tensorboard")) as log:
        for record in records():
            log.write(record)
    assert (tmp_path / LOG_FILE).is_file()
    events = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "loss/esc50", "loss/cremad"} <= tags
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 2.5), (2, 2.0)]  # NaN not plotted
    assert [e.value for e in events.Scalars("loss/cremad")] == [2.5]


def test_unknown_log_kind_is_refused():
    assert parse_log_kinds(None) == [] and parse_log_kinds("jsonl,tensorboard") == ["jsonl", "tensorboard"]
    with pytest.raises(XaresError, match="--log: unknown wandb"):
        parse_log_kinds("wandb")


def test_a_resumed_run_replaces_the_events_after_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with open_train_log(tmp_path, ["tensorboard"]) as log:
        for step in (1, 2, 3):
            log.write(StepRecord(step, 10.0 + step, 1e-4, 1.0))
    with open_train_log(tmp_path, ["tensorboard"], first_step=1) as log:  # resumed from the step-1 checkpoint
        for step in (2, 3):
            log.write(StepRecord(step, 20.0 + step, 1e-4, 1.0))
    events = EventAccumulator(str(tmp_path / TENSORBOARD_DIR))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 11.0), (2, 22.0), (3, 23.0)]


def test_xares_train_log_tensorboard_writes_event_files(demo_store, tmp_path):
    from typer.testing import CliRunner

    from xares_llm.cli.main import app

    run_dir = tmp_path / "run"
    args = ["train", demo_store.report.encoder_id, "--mixture", "demo", "--recipe", "demo", "--steps", "3"]
    args += ["--cache", str(demo_store.cache_root), "--run-dir", str(run_dir), "--log", "tensorboard"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    demo_tasks = {"demo_pitch", "demo_count", "demo_events", "demo_melody"}
    for entry in read_log(run_dir / LOG_FILE):
        # the step's loss is the token-weighted mean of its tasks' losses, so it lies between them
        assert entry["task_loss"] and set(entry["task_loss"]) <= demo_tasks
        assert min(entry["task_loss"].values()) - 1e-6 <= entry["loss"] <= max(entry["task_loss"].values()) + 1e-6
        assert entry["tokens_per_s"] > 0
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 3
