"""Ctrl-C during `xares extract` says what it kept and the command that resumes, and exits 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from xares_llm.audio.demo_data import write_demo_shards


def test_ctrl_c_says_what_is_kept_and_how_to_resume(tmp_path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_demo_shards(data)
    args = ["extract", "mel", "--tasks", "demo", "--cache", str(cache), "--data", str(data), "--batch-seconds", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "xares_llm.cli.main", *args], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "XARES_PROGRESS_SECONDS": "0"},
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not list(cache.glob("features/*/*/*/part-*.zarr")) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, stderr = process.communicate(timeout=120)
    kept = len(list(cache.glob("features/*/*/*/part-*.zarr")))
    assert process.returncode == 130, stderr
    assert 1 <= kept < 16, "the test should interrupt an unfinished extraction"
    line = next(line for line in stderr.splitlines() if line.startswith("interrupted:"))
    assert "parts are complete and kept" in line
    assert f"Resume with the same command (complete parts are skipped): xares {' '.join(args)}" in line
    assert not list(cache.glob("features/*/*/*/*.tmp*")), "no temp part is left behind"
