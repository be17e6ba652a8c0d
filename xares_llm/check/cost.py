"""One 30 s clip at batch 1, encoded as extraction would: its frame count (and so the frame rate), the
wall time and the peak memory of the forward."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from xares_llm.check.context import LONG_CLIP_SECONDS, Context
from xares_llm.encoders.encoding import encode_clips

FRAME_RATE_RTOL = 0.02  # declared frame_rate_hz may differ from the measured rate by 2 %
GPU_MEMORY_LIMIT_BYTES = 24 * 1024**3  # the challenge rule: the encoder alone, batch 1, fits a 24 GB card
RSS_INTERVAL_S = 0.001  # how often the CPU peak is sampled during the forward


def run_long_clip(ctx: Context) -> None:
    """Encode one 30 s clip at batch 1; record its valid frames, the seconds taken and the peak memory."""
    clip = ctx.noise(LONG_CLIP_SECONDS, gain=0.3)
    if ctx.device.type == "cuda":
        ctx.synchronize()
        torch.cuda.reset_peak_memory_stats(ctx.device)
        start = time.perf_counter()
        frames = encode_clips(ctx.encoder, [clip], ctx.device)[0]
        ctx.synchronize()
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(ctx.device)
        memory = (
            f"{_gib(peak)} GiB allocated at peak (weights included); "
            f"the challenge allows {_gib(GPU_MEMORY_LIMIT_BYTES)} GiB"
        )
        within = peak <= GPU_MEMORY_LIMIT_BYTES
    else:
        with rss_peak_growth() as growth:
            start = time.perf_counter()
            frames = encode_clips(ctx.encoder, [clip], ctx.device)[0]
            seconds = time.perf_counter() - start
        memory = (
            f"~{_mib(growth[0])} MiB at peak above the memory in use before the forward "
            "(weights excluded; RSS sampled every 1 ms; CPU, informational)"
        )
        within = True
    ctx.state.long_frames, ctx.state.long_seconds, ctx.state.memory = frames.shape[0], seconds, (memory, within)


def check_long_clip(ctx: Context) -> tuple[bool, str]:
    ctx.require("features 3-D", "mask length")  # encode_clips trims frames with the mask
    try:
        run_long_clip(ctx)
    except Exception as e:
        return False, f"encoding one {LONG_CLIP_SECONDS:g} s clip at batch 1 raised {type(e).__name__}: {e}"
    frames = ctx.state.long_frames
    if frames == 0:
        return False, f"one {LONG_CLIP_SECONDS:g} s clip gave 0 valid frames"
    windows = getattr(ctx.encoder, "max_input_seconds", None)
    note = f" (in windows of {windows:g} s)" if windows else ""
    return True, f"{frames} frames for {LONG_CLIP_SECONDS:g} s{note}"


def check_frame_rate(ctx: Context) -> tuple[bool, str]:
    ctx.require("30 s clip")
    measured = ctx.state.long_frames / LONG_CLIP_SECONDS
    if not hasattr(ctx.encoder, "frame_rate_hz"):
        return True, f"{measured:.2f} frames per second of audio (measured; frame_rate_hz not declared)"
    declared = ctx.encoder.frame_rate_hz
    if not isinstance(declared, int | float) or isinstance(declared, bool):
        return False, f"frame_rate_hz must be a number, got {declared!r}"
    if abs(measured - declared) > FRAME_RATE_RTOL * declared:
        return False, (
            f"frame_rate_hz declares {declared:g} Hz but one {LONG_CLIP_SECONDS:g} s clip gave "
            f"{ctx.state.long_frames} frames = {measured:.2f} Hz; fix frame_rate_hz or remove it"
        )
    return True, f"{measured:.2f} Hz measured, {declared:g} Hz declared"


def check_time(ctx: Context) -> tuple[bool, str]:
    ctx.require("30 s clip")
    seconds = ctx.state.long_seconds
    speed = format_speed(LONG_CLIP_SECONDS / max(seconds, 1e-9))
    return True, f"{seconds:.3f} s for one {LONG_CLIP_SECONDS:g} s clip on {ctx.device} ({speed} real time)"


def check_memory(ctx: Context) -> tuple[bool, str]:
    ctx.require("30 s clip")
    memory, within = ctx.state.memory
    if not within:
        return False, memory + "; reduce the model size or use max_input_seconds windows"
    return True, memory


def format_speed(speed: float) -> str:
    """Audio seconds per wall second: ``137x``, ``3.4x``, ``0.42x`` (two significant digits below 10)."""
    return f"{speed:.0f}x" if speed >= 10 else f"{speed:.2g}x"


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**3:.2f}"


def _mib(n_bytes: int) -> str:
    mib = n_bytes / 1024**2
    return f"{mib:.0f}" if mib >= 10 else f"{mib:.1f}"


def _rss_bytes() -> int | None:
    """Resident set size of this process from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc's malloc_trim), so the forward's own need shows as growth.

    Without it the memory an earlier, larger call freed stays resident and is reused: the growth reads ~0.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # no C library found, or not glibc
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


@contextmanager
def rss_peak_growth(interval_s: float = RSS_INTERVAL_S) -> Iterator[list[int]]:
    """Yield a one-item list that holds, after the block, the peak resident-size growth in bytes.

    Torch's CPU allocations are invisible to tracemalloc and torch keeps no CPU allocator statistics,
    so we sample the RSS from a thread (torch ops release the GIL). Off Linux we fall back to the
    growth of ru_maxrss, which misses peaks below an earlier maximum.
    """
    growth = [0]
    _release_free_heap()
    start = _rss_bytes()
    if start is None:
        import resource  # Unix only; needed only off Linux

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        yield growth
        unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB elsewhere
        growth[0] = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * unit
        return
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes() or 0)
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], _rss_bytes() or 0)
        growth[0] = peak[0] - start
