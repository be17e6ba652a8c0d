"""Part locks: independent extraction processes on one store split the parts between them.

``part-X.zarr.lock`` records its holder as JSON ``{host, pid, start, taken}``; the holder also keeps
an exclusive `fcntl.flock` on the file for as long as it holds the claim. The flock makes every
question atomic on one host: the kernel drops it when the holder dies (SIGKILL included), and only
one of several processes taking over a stale lock gets it. The recorded owner covers the rest:

- same host, flock free: the holder is gone, whatever the record says (a live pid, a reused pid,
  no start time, the older ``<host>-<pid>`` text): every holder keeps the flock while it holds.
- another host: its flock may not reach us (network filesystems differ), so its lock counts as live
  until `OTHER_HOST_EXPIRY_S` (24 h) after it was taken, by the file's mtime; one part never takes
  that long, so an older lock is from a machine that died.

Releasing removes the file before dropping the flock, so no one can take a claim being released;
a process that opened the old file meanwhile sees it is no longer the file at that path and retries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import LOCK_SUFFIX

OTHER_HOST_EXPIRY_S = 24 * 3600


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first); None where there is no /proc entry."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22); None if unknown."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (killed, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    return not (fields and fields[0] == "Z")


def owner_record() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start(os.getpid()), "taken": time.time()}


def parse_owner(text: str) -> dict | None:
    """The recorded owner: JSON, or the older ``<host>-<pid>`` text; None when unreadable."""
    with contextlib.suppress(json.JSONDecodeError, TypeError):
        record = json.loads(text)
        if isinstance(record, dict) and isinstance(record.get("pid"), int):
            return record
    host, _, pid = text.strip().rpartition("-")
    return {"host": host, "pid": int(pid), "start": None} if host and pid.isdigit() else None


def owner_alive(owner: dict | None, age_s: float) -> bool:
    """Whether the recorded owner of a lock whose flock we got may still be working (the module docstring)."""
    if owner is None:
        return False
    if owner.get("host") != socket.gethostname():
        return age_s < OTHER_HOST_EXPIRY_S
    return False  # asked only once we hold the flock: no process on this host holds the claim


def process_alive(owner: dict | None, age_s: float) -> bool:
    """Whether the process a record names still runs: on this host its pid is alive with the recorded
    start time (a reused pid is another process); on another host, for `OTHER_HOST_EXPIRY_S` after the
    record was written. For what a record says, never for a lock: a lock is held only by its flock."""
    if owner is None or owner.get("host") != socket.gethostname():
        return owner_alive(owner, age_s)
    pid = owner.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    recorded, actual = owner.get("start"), process_start(pid)
    return recorded is None or actual is None or recorded == actual


class PartLock:
    """An exclusive claim on one part (``part-X.zarr.lock``); `acquire` never waits."""

    def __init__(self, final_path: Path):
        self.path = Path(final_path).with_name(Path(final_path).name + LOCK_SUFFIX)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Claim the part; False when another live process holds it."""
        if self.held:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as e:
                os.close(fd)
                raise CacheError(f"cannot lock {self.path}: {e.strerror}; use a --cache on a local filesystem") from e
            if not self._is_current(fd):  # released (and removed) between our open and our flock
                os.close(fd)
                continue
            stat = os.fstat(fd)
            if owner_alive(parse_owner(os.pread(fd, 4096, 0).decode(errors="replace")), time.time() - stat.st_mtime):
                os.close(fd)
                return False
            data = json.dumps(owner_record()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            self._fd = fd
            return True
        return False

    def _is_current(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


def remove_stale_locks(directory: Path) -> int:
    """Remove the lock files in `directory` no live process holds (a killed run's); returns how many."""
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if path.name.endswith(LOCK_SUFFIX):
            lock = PartLock(path.with_name(path.name.removesuffix(LOCK_SUFFIX)))
            if lock.acquire():
                lock.release()
                removed += 1
    return removed
