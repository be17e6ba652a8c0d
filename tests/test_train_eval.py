"""Stage two end to end on the small demo store: train, resume, evaluate, score, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from xares_llm.cli.main import app
from xares_llm.errors import StoreError, XaresError
from xares_llm.lalm.evaluate import evaluate
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.runs import WEIGHTS_FILE, checkpoints, read_run
from xares_llm.lalm.train import resolve_store, train
from xares_llm.scoring.predictions import read_predictions
from xares_llm.scoring.score import SCORES_JSON, score_run
from xares_llm.tasks.schema import load_mixture

STEPS = 24


def recipe(**overrides):
    return load_recipe("demo", {"steps": STEPS, "checkpoint_every": 8, "batch_size": 8, **overrides})


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained_run(demo_store, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run") / "run"
    train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    return run_dir


class Interrupt:
    """A progress reporter that stops training at one step, as a Ctrl-C would."""

    def __init__(self, at: int):
        self.at = at

    def start(self, first_step: int, total_steps: int) -> None: ...

    def step(self, step: int, loss: float, lr: float) -> None:
        if step == self.at:
            raise KeyboardInterrupt


def interrupted_run(run_dir: Path, demo_store, at: int, **overrides) -> Path:
    """A run stopped at step `at` as a Ctrl-C would stop it (its last checkpoint is at step 8)."""
    with pytest.raises(KeyboardInterrupt):
        train(run_dir, recipe(**overrides), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root,
              progress=Interrupt(at))  # fmt: skip
    return run_dir


def test_training_finishes_and_learns(trained_run):
    info = read_run(trained_run)
    assert info.finished and info.steps_done == STEPS
    values = losses(trained_run)
    assert len(values) == STEPS
    assert sum(values[-6:]) / 6 < sum(values[:6]) / 6
    assert [step for step, _ in checkpoints(trained_run)] == [16, 24]  # keep_checkpoints = 2


def test_resumed_run_reproduces_the_uninterrupted_one(trained_run, demo_store, tmp_path):
    run_dir = interrupted_run(tmp_path / "run", demo_store, at=13)
    assert not read_run(run_dir).finished and read_run(run_dir).steps_done == 8
    with pytest.raises(XaresError, match="unfinished"):
        evaluate(run_dir, demo_store.cache_root)
    result = train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    assert result.resumed_from == 8
    assert losses(run_dir) == losses(trained_run)  # exact on CPU
    final = lambda run: load_file(str(checkpoints(run)[-1][1] / WEIGHTS_FILE))  # noqa: E731
    for name, tensor in final(trained_run).items():
        assert tensor.equal(final(run_dir)[name]), name


def test_resume_refuses_another_recipe(trained_run, demo_store):
    with pytest.raises(XaresError, match=r"different recipe.*optim"):
        train(
            trained_run,
            recipe(optim={"lr": 1.0}),
            load_mixture("demo"),
            demo_store.report.encoder_id,
            demo_store.cache_root,
        )


def test_eval_writes_every_test_clip_and_score_reproduces(trained_run, demo_store):
    paths = evaluate(trained_run, demo_store.cache_root)
    assert sorted(p.stem for p in paths) == sorted(load_mixture("demo").evaluate)
    rows = read_predictions(trained_run / "predictions" / "demo_events.jsonl")
    assert len(rows) == 16 and all(r["references"] and isinstance(r["prediction"], str) for r in rows)
    scores = score_run(trained_run)
    assert set(scores.tasks) == {"demo_pitch", "demo_count", "demo_events", "demo_melody"}
    first = (trained_run / SCORES_JSON).read_text()
    result = CliRunner().invoke(app, ["score", str(trained_run)])
    assert result.exit_code == 0, result.output
    assert "demo_melody" in result.output and "overall" in result.output
    assert (trained_run / SCORES_JSON).read_text() == first


def test_eval_from_a_fresh_process_matches(trained_run, demo_store, tmp_path):
    evaluate(trained_run, demo_store.cache_root, tasks=["demo_pitch"])
    expected = (trained_run / "predictions" / "demo_pitch.jsonl").read_text()
    env = {**os.environ, "XARES_CACHE": str(demo_store.cache_root)}
    command = [sys.executable, "-m", "xares_llm.cli.main", "eval", str(trained_run), "--tasks", "demo_pitch", "--redo"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (trained_run / "predictions" / "demo_pitch.jsonl").read_text() == expected


def test_missing_store_names_the_extract_command(tmp_path, demo_store):
    with pytest.raises(StoreError, match=r"xares extract mel"):
        resolve_store(tmp_path, "mel")
    encoder_id = demo_store.report.encoder_id
    assert resolve_store(demo_store.cache_root, encoder_id[:8]) == (encoder_id, "mel")
    result = CliRunner().invoke(
        app, ["train", "mel", "--mixture", "demo", "--recipe", "demo", "--cache", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no feature store for mel" in result.output and "xares extract mel" in result.output


LORA_DROPOUT = {"r": 4, "alpha": 16, "dropout": 0.1, "target_modules": "all-linear"}  # as the reference recipe


def test_resume_with_lora_dropout_is_exact(demo_store, tmp_path):
    """Dropout draws from the global RNG: the resumed run must see the very same masks."""
    lora = recipe(lora=LORA_DROPOUT)
    args = (load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    train(tmp_path / "whole", lora, *args)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "cut", lora, *args, progress=Interrupt(13))
    with (tmp_path / "cut" / "log.jsonl").open("a") as log:
        log.write('{"step": 14, "lo')  # a line cut short by the kill
    assert train(tmp_path / "cut", lora, *args).resumed_from == 8
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
    final = lambda run: load_file(str(checkpoints(run)[-1][1] / WEIGHTS_FILE))  # noqa: E731
    for name, tensor in final(tmp_path / "whole").items():
        assert tensor.equal(final(tmp_path / "cut")[name]), name


def test_a_crafted_training_state_runs_no_code(trained_run, demo_store, tmp_path):
    import pickle
    import shutil

    run_dir = tmp_path / "received"
    shutil.copytree(trained_run, run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "running", "steps_done": 16}))
    shutil.rmtree(checkpoints(run_dir)[-1][1])
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch_file = checkpoints(run_dir)[-1][1] / "state.pt"
    torch_file.write_bytes(pickle.dumps({"optimizer": Payload()}))
    with pytest.raises(XaresError, match="refusing training state"):
        train(run_dir, recipe(), load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    assert not marker.exists()


def test_training_stops_at_a_non_finite_loss_and_stays_resumable(demo_store, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(XaresError, match=r"training stopped at step \d+: (loss|gradient norm) (nan|inf).*demo_"):
        train(
            run_dir,
            recipe(optim={"lr": 1e30}),
            load_mixture("demo"),
            demo_store.report.encoder_id,
            demo_store.cache_root,
        )
    info = read_run(run_dir)
    assert info.status == "failed" and "training stopped at step" in info.stopped and not checkpoints(run_dir)


def test_eval_refuses_a_run_whose_last_loss_is_not_finite(trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "diverged"
    shutil.copytree(trained_run, run_dir)
    with (run_dir / "log.jsonl").open("a") as log:
        log.write(json.dumps({"step": STEPS + 1, "loss": float("nan"), "lr": 0.0}) + "\n")
    with pytest.raises(XaresError, match="last training loss is nan"):
        evaluate(run_dir)


def test_a_failed_checkpoint_write_is_one_error_and_leaves_no_temp_dir(trained_run, tmp_path):
    from xares_llm.lalm.checkpoints import build_model, save_checkpoint
    from xares_llm.lalm.tokenizer import load_tokenizer

    model = build_model(recipe(), 64, load_tokenizer("byte"))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step-0000008").write_text("a file where the checkpoint dir goes")
    with pytest.raises(XaresError, match=r"cannot write checkpoint .*step-0000008.*rerun"):
        save_checkpoint(tmp_path, 8, model, {"step": 8}, keep=2)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-0000008"]


def test_run_records_its_inputs_and_eval_needs_no_cache_flag(trained_run, demo_store):
    info = read_run(trained_run)
    assert info.cache_root == str(demo_store.cache_root.resolve())
    assert sorted(p.stem for p in (trained_run / "tasks").glob("*.yaml")) == sorted(load_mixture("demo").evaluate)
    assert (trained_run / "mixture.yaml").is_file()
    assert info.train_targets["demo_pitch"]["clips"] == 80 and info.train_targets["demo_pitch"]["filtered"] == 0
    assert evaluate(trained_run)  # the cache comes from run.json
    scores = score_run(trained_run).to_dict()
    assert scores["comparable_to_reference"] is False and scores["differences"]
    assert scores["provenance"]["software"]["torch"] and scores["provenance"]["seed"] == 42
    assert scores["provenance"]["extraction"]["devices"] == ["cpu"]
    assert scores["provenance"]["training"]["device"] == "cpu"
    assert scores["tasks"]["demo_pitch"]["prompt"] == "Which note?"
    assert scores["tasks"]["demo_pitch"]["test_targets"]["clips"] == 16


def test_runs_lists_the_run_and_checkpoints_follow_the_umask(trained_run):
    import stat

    from xares_llm.lalm.checkpoints import current_umask

    result = CliRunner().invoke(app, ["runs", str(trained_run.parent)])
    assert result.exit_code == 0, result.output
    assert "finished" in result.output and "24/24" in result.output
    mode = stat.S_IMODE(checkpoints(trained_run)[-1][1].stat().st_mode)
    assert mode == 0o777 & ~current_umask()  # not the 0700 of mkdtemp


def test_train_resumes_from_the_run_dir_alone(demo_store, tmp_path):
    run_dir = interrupted_run(tmp_path / "run", demo_store, at=9)
    result = CliRunner().invoke(app, ["train", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "resumed from step 8" in result.output and read_run(run_dir).finished
    again = CliRunner().invoke(app, ["train", str(run_dir)])
    assert again.exit_code == 0 and "already finished" in again.output


def test_default_run_dir_names_differ_by_recipe():
    from xares_llm.cli.train import default_run_dir

    assert default_run_dir("enc", "demo", recipe()) != default_run_dir("enc", "demo", recipe(steps=STEPS + 1))
    assert default_run_dir("enc", "demo", recipe()) == default_run_dir("enc", "demo", recipe())


def test_train_fails_in_seconds_when_the_hub_is_unreachable(demo_store, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    args = ["train", demo_store.report.encoder_id, "--mixture", "demo", "--cache", str(demo_store.cache_root)]
    result = CliRunner().invoke(app, [*args, "--recipe", "reference"])
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    assert "HuggingFaceTB/SmolLM2-135M" in result.output and "unreachable" in result.output
    assert "--recipe demo" in result.output and not (tmp_path / "runs").exists()


def test_plain_progress_lines_off_a_terminal(demo_store, tmp_path, monkeypatch):
    from xares_llm.cli import progress

    monkeypatch.setattr(progress, "PLAIN_INTERVAL_S", 0.0)
    args = ["train", demo_store.report.encoder_id, "--mixture", "demo", "--recipe", "demo", "--steps", "3"]
    result = CliRunner().invoke(app, [*args, "--cache", str(demo_store.cache_root), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("train: step")]
    assert [line.split(",")[0] for line in lines] == ["train: step 1/3", "train: step 2/3", "train: step 3/3"]
    assert "steps/s" in lines[-1] and "eta" in lines[-1]
    assert len((tmp_path / "r" / "log.jsonl").read_text().splitlines()) == 3


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("xares-llm ")


def test_a_damaged_chunk_read_by_a_loader_worker_is_one_line_naming_the_part(demo_store, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, cache)
    encoder_id = demo_store.report.encoder_id
    chunk = next((cache / "features" / encoder_id / "demo_pitch" / "train").glob("part-*/frames/c/0/0"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(data)
    args = ["train", encoder_id, "--mixture", "demo", "--recipe", "demo", "--steps", "40", "--set", "num_workers=1"]
    result = CliRunner().invoke(app, [*args, "--cache", str(cache), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "frames: cannot read" in errors[0] and "demo_pitch" in errors[0], result.output
    assert "Traceback" not in result.output
