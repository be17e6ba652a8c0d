"""The CLI's argument layer answers --help and bad arguments, paths and run dirs before the heavy
libraries load (torch, transformers, zarr): checked by what a fresh process has imported, not by time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "zarr")

PROBE = """
import json, sys
from typer.testing import CliRunner
from xares_llm.cli.main import app
result = CliRunner().invoke(app, json.loads(sys.argv[1]))
print(json.dumps({"code": result.exit_code, "output": result.output,
                  "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""

CASES = {
    "help": (["--help"], 0, "Usage"),
    "eval of a missing run": (["eval", "runs/does-not-exist"], 1, "not a training run"),
    "score of a missing dir": (["score", "runs/does-not-exist"], 1, "no such folder"),
    "runs of a missing dir": (["runs", "does-not-exist"], 1, "is not a folder"),
    "report of a missing dir": (["report", "runs/does-not-exist"], 1, "no such directory"),
    "extract with a bad split": (["extract", "mel", "--tasks", "demo", "--split", "dev"], 2, "unknown split"),
    "run with a bad track": (["run", "mel", "--track", "C"], 2, "use one of"),
    "train without a mixture": (["train", "mel"], 2, "give the training mixture"),
    "train with a bad --set": (["train", "mel", "--mixture", "demo", "--set", "optim.lrr=1"], 1, "--set optim.lrr=1"),
    "probe with a bad head": (["probe", "mel", "--tasks", "demo", "--heads", "svm"], 1, "svm"),
    "cache verify of a missing store": (["cache", "verify", "nope", "--cache", "/nonexistent"], 1, "nope"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_argument_errors_come_before_heavy_imports(case, tmp_path):
    args, code, message = CASES[case]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["code"] == code, result["output"]
    assert message in " ".join(result["output"].split()), result["output"]
    assert result["heavy"] == [], f"{case} imported {result['heavy']}"
