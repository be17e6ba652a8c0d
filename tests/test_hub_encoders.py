"""A built-in encoder whose weights this machine cannot get fails at once, with the LLM's hint."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def xares(args: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    environment |= {"HF_HOME": str(tmp_path / "hf"), **env}  # an empty Hugging Face cache
    command = [sys.executable, "-m", "xares_llm.cli.main", *args]
    return subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (["check", "whisper-base"], {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        (["extract", "hubert-base", "--tasks", "demo", "--cache", "c"], {"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"),
        # nothing listens on port 9: refused at once, no retries
        (["extract", "whisper-base", "--tasks", "demo", "--cache", "c"], {"HF_ENDPOINT": "http://127.0.0.1:9"},
         "the hub is unreachable"),
    ],
)  # fmt: skip
def test_a_hub_encoder_offline_fails_with_one_line(args, env, reason, tmp_path):
    done = xares(args, tmp_path, **env)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: model "), done.stderr
    assert reason in lines[0] and "HF_HUB_OFFLINE=1" in lines[0] and "--encoder-args" in lines[0]
    assert not (tmp_path / "c" / "features").exists()  # nothing was started
