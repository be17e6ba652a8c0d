"""Advice never sends the user back to the command that just failed."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from xares_llm.cli.main import app


def test_download_offline_does_not_suggest_xares_download(tmp_path):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    command = [sys.executable, "-m", "xares_llm.cli.main", "download", "--tasks", "esc50", "--data", str(tmp_path)]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    message = " ".join(done.stderr.split())
    assert "HF_HUB_OFFLINE is set" in message and "connected machine" in message
    assert "xares download" not in message


def test_score_of_a_missing_dir_does_not_suggest_eval(tmp_path):
    result = CliRunner().invoke(app, ["score", str(tmp_path / "runs" / "nope")])
    assert result.exit_code == 1
    assert "no such folder" in result.output and "xares eval" not in result.output
