"""Peak memory of a block of work: the one meter behind `xares bench`, `xares check` and the extraction profile.

On CUDA it is torch's max allocated memory. On the CPU it is the process's resident set: Linux's
high-water mark (VmHWM, reset on entry) when it can be reset, else the RSS sampled from a thread
(torch ops release the GIL), else the growth of ``ru_maxrss`` (in bytes on macOS, KiB elsewhere).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import sys
import threading
from contextlib import AbstractContextManager
from pathlib import Path

STATUS_FILE = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")  # writing "5" resets the process's VmHWM (Linux >= 4.0)
SAMPLE_INTERVAL_S = 0.001  # RSS sampling period where the high-water mark cannot be reset


def _status_kb(field: str) -> float | None:
    try:
        for line in STATUS_FILE.read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float | None:
    """Resident set size of this process in MB from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _max_rss_mb() -> float:
    import resource  # Unix only; needed only off Linux

    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc's malloc_trim), so a block's own need shows as growth."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # no C library found, or not glibc
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


class PeakMemory(AbstractContextManager):
    """Peak memory in MB over the `with` block (``peak_mb``) and its growth above the memory in use on
    entry (``growth_mb``). `release_heap` trims freed heap first, so memory an earlier, larger call
    freed does not hide this block's need."""

    def __init__(self, device, release_heap: bool = False) -> None:
        self.device = device
        self.release_heap = release_heap
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mode = "sample"

    @property
    def growth_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
            self.start_mb = torch.cuda.memory_allocated(self.device) / 2**20
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        if self.release_heap:
            release_free_heap()
        current = rss_mb()
        if current is None:
            self._mode, self.start_mb = "maxrss", _max_rss_mb()
            return self
        self.start_mb = self.peak_mb = current
        with contextlib.suppress(OSError):
            CLEAR_REFS.write_text("5")
            if _status_kb("VmHWM") is not None:
                self._mode = "hwm"
                return self
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb() or 0.0)
            self._stop.wait(SAMPLE_INTERVAL_S)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._mode == "hwm":
            self.peak_mb = max(self.start_mb, (_status_kb("VmHWM") or 0.0) / 1024)
        elif self._mode == "maxrss":
            self.peak_mb = _max_rss_mb()  # the lifetime peak: a block below an earlier maximum shows no growth
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, rss_mb() or 0.0)
