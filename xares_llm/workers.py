"""Helper processes that die with the process that started them, SIGKILL included.

A `ProcessPoolExecutor` worker whose parent is killed waits on its task queue for ever (and keeps
multiprocessing's resource tracker alive with it). `die_with_parent` is the pool's initializer: on
Linux the kernel sends the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); a
watchdog thread that polls the parent's pid covers other systems and the moment before prctl ran.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Run in the worker: exit as soon as `parent_pid` is no longer this process's parent."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # libc is in the process already
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="xares-parent-watch", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)
