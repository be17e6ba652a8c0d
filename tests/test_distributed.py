"""`torchrun --nproc_per_node 2 xares train`: two CPU processes (gloo) split each batch and finish the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from xares_llm.lalm.evaluate import evaluate
from xares_llm.lalm.runs import checkpoints, read_run


def test_two_process_training(demo_store, tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "xares_llm.cli.main", "train", demo_store.report.encoder_id, "--mixture", "demo", "--recipe", "demo",
        "--steps", "6", "--set", "batch_size=4", "--set", "checkpoint_every=3", "--run-dir", str(run_dir),
        "--cache", str(demo_store.cache_root), "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    info = read_run(run_dir)
    assert info.finished and info.steps_done == 6
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5, 6]  # rank 0 alone writes
    assert all(row["task_loss"] and row["tokens_per_s"] > 0 for row in log)  # summed over both ranks
    assert [step for step, _ in checkpoints(run_dir)] == [3, 6]
    assert evaluate(run_dir, demo_store.cache_root, tasks=["demo_count"])[0].is_file()


def test_two_process_evaluation_equals_one_process(demo_store, tmp_path):
    import shutil

    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.lalm.train import train
    from xares_llm.tasks.schema import load_mixture

    run_dir = tmp_path / "run"
    recipe = load_recipe("demo", {"steps": 4, "eval_batch_size": 4})
    train(run_dir, recipe, load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    evaluate(run_dir, demo_store.cache_root, tasks=["demo_melody", "demo_count"])
    single = {p.name: p.read_text() for p in (run_dir / "predictions").glob("*.jsonl")}
    shutil.rmtree(run_dir / "predictions")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "xares_llm.cli.main", "eval", str(run_dir), "--tasks", "demo_melody,demo_count", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert {p.name: p.read_text() for p in (run_dir / "predictions").glob("*.jsonl")} == single
    assert not list((run_dir / "predictions").glob(".*"))  # the ranks' partial files are gone
    assert done.stdout.count("demo_melody") == 1  # one score table, from rank 0


def test_xares_run_under_torchrun_extracts_trains_and_evaluates(demo_store, tmp_path):
    from xares_llm.cache import FeatureSplit
    from xares_llm.tasks.schema import resolve_tasks

    cache, run_dir = tmp_path / "cache", tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "xares_llm.cli.main", "run", "mel", "--mixture", "demo", "--recipe", "demo", "--steps", "4",
        "--set", "batch_size=4", "--data", str(demo_store.data_root), "--cache", str(cache),
        "--run-dir", str(run_dir), "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads((run_dir / "scores.json").read_text())
    assert set(scores["tasks"]) == {"demo_pitch", "demo_count", "demo_events", "demo_melody"}
    encoder_id = read_run(run_dir).encoder_id
    for task in resolve_tasks("demo"):
        for split in ("train", "test"):
            assert len(FeatureSplit(cache, encoder_id, task.dataset.name, split).parts) == 2
    assert done.stdout.count("overall") == 1
