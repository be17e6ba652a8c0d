"""Settings from the environment: a bad value is one line naming the variable, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from xares_llm.cache.remote import REMOTE_CACHE_ENV
from xares_llm.cli.main import app
from xares_llm.cli.progress import PROGRESS_ENV


def one_error(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and "Traceback" not in result.output and len(errors) == 1, result.output
    return " ".join(result.output.split())


def train_args(demo_store, cache: str, tmp_path) -> list[str]:
    args = ["train", demo_store.report.encoder_id, "--mixture", "demo", "--recipe", "demo", "--steps", "1"]
    return [*args, "--cache", cache, "--run-dir", str(tmp_path / "run")]


def test_a_progress_interval_that_is_not_seconds_is_one_line(demo_store, tmp_path, monkeypatch):
    env = {**os.environ, PROGRESS_ENV: "abc", "PYTHONPATH": os.pathsep.join(sys.path)}
    started = subprocess.run(
        [sys.executable, "-m", "xares_llm.cli.main", "cache", "ls", "--cache", str(tmp_path / "c")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0 and "Traceback" not in started.stderr, started.stderr  # only a reporter reads it
    monkeypatch.setenv(PROGRESS_ENV, "abc")
    result = CliRunner().invoke(app, train_args(demo_store, str(demo_store.cache_root), tmp_path))
    assert f"${PROGRESS_ENV} is 'abc'; set it to a number of seconds" in one_error(result)
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_an_unwritable_remote_mirror_is_one_line(demo_store, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(REMOTE_CACHE_ENV, str(tmp_path / "a-file" / "mirror"))
    result = CliRunner().invoke(app, train_args(demo_store, f"file://{demo_store.cache_root}", tmp_path))
    assert f"cannot write the local mirror {tmp_path / 'a-file' / 'mirror'}" in one_error(result)
    assert REMOTE_CACHE_ENV in result.output
