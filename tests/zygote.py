"""Start `xares` commands as real processes that can be SIGKILLed, without paying Python's start each time.

A zygote process imports the CLI (and torch) once; each command is a fork of it that runs the
Typer app with the given arguments and exits with its exit code, so what is killed is a whole
`xares` process with its own threads and decode workers. On a shared 2-core machine a fresh
interpreter takes seconds to import torch; a fork takes milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SERVER = r"""
import json, os, sys
import xares_llm.extract.run  # torch, zarr, ...: imported once, before any fork
from xares_llm.cli.main import app

while line := sys.stdin.readline():
    request = json.loads(line)
    if request["op"] == "wait":
        print(os.waitpid(request["pid"], 0)[1], flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.update(request["env"])
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            app(request["args"], prog_name="xares")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
"""


class Zygote:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def _ask(self, request: dict) -> int:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def start(self, args: list[str], log: Path, env: dict[str, str]) -> int:
        """Fork a `xares <args>` process; returns its pid."""
        return self._ask({"op": "run", "args": args, "log": str(log), "env": env})

    def wait(self, pid: int) -> int:
        """The raw wait status of a started process (it is reaped)."""
        return self._ask({"op": "wait", "pid": pid})

    def run(self, args: list[str], log: Path, env: dict[str, str]) -> int:
        """Run to the end; returns the exit code."""
        return os.waitstatus_to_exitcode(self.wait(self.start(args, log, env)))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def marked_processes(marker: str) -> list[int]:
    """Live processes (zombies excluded) whose environment holds `marker`: ours and their children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
