"""`benchmarks.gpu_check --device cpu --quick` runs every section it runs on CUDA, and its JSON says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_gpu_check_runs_every_section_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--quick"]
    command += ["--encoder-size", "whisper-tiny", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["device_name"] == "cpu"
    assert set(result["extraction"]) == {"fp32", "fp16", "bf16"}
    for row in result["extraction"].values():
        assert row["audio_hours"] > 0 and row["audio_hours_per_s"] > 0 and row["peak_memory_mb"] > 0
    assert set(result["bench"]) == {"fp32", "fp16", "bf16"} and "check" in result
    for recipe in ("reference", "t4"):
        steps = result["train_steps"][recipe]
        assert steps["wall_s"]["online"]["median"] > 0 and steps["wall_s"]["cached"]["median"] > 0
        assert steps["precision"] == "fp32"  # no autocast on CPU, whatever the recipe says
    assert set(result["train_eval"]) == {"python-reference", "python-t4", "torchrun-t4"}
    for row in result["train_eval"].values():
        assert row["steps"] == 4 and row["eval_clips"] == 4 and row["eval_tokens_per_s"] > 0
    for ratios in result["cost_ratio"].values():
        assert ratios["N=1"] <= ratios["N=3"] <= ratios["N=10"]  # extraction is paid once, the steps N times
