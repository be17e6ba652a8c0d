"""One 30 s clip at batch 1, encoded as extraction would: its frame count (and so the frame rate), the
wall time and the peak memory of the forward."""

from __future__ import annotations

import time

import torch

from xares_llm.check.context import LONG_CLIP_SECONDS, Context
from xares_llm.encoders.encoding import encode_clips
from xares_llm.memory import PeakMemory

FRAME_RATE_RTOL = 0.02  # declared frame_rate_hz may differ from the measured rate by 2 %
GPU_MEMORY_LIMIT_BYTES = 24 * 1024**3  # the challenge rule: the encoder alone, batch 1, fits a 24 GB card


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
        with PeakMemory(ctx.device, release_heap=True) as meter:
            start = time.perf_counter()
            frames = encode_clips(ctx.encoder, [clip], ctx.device)[0]
            seconds = time.perf_counter() - start
        memory = (
            f"~{_mib(meter.growth_mb * 2**20)} MiB at peak above the memory in use before the forward "
            "(weights excluded; process peak RSS; CPU, informational)"
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
