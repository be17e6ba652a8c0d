"""`xares bench`: an encoder's cost, measured on the extraction path (`encoding.encode_clips`).

Per clip duration and batch size: warm-up calls first (not timed), then `repeats` timed calls; the
median wall time (and its interquartile range, and process CPU time) gives clips per second and
audio seconds per second (x real time). Peak memory is the process's resident set on the CPU (its
high-water mark, reset before each point) and torch's max allocated memory on CUDA. The encoder's
frame rate and output dim come from its actual output.

The extraction profile (`xares_llm.extract.profile`) describes a real `xares extract` run in the same units.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from xares_llm.cache.format import ENCODER_PRECISIONS as PRECISIONS
from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import XaresError
from xares_llm.memory import PeakMemory


@dataclass
class BenchPoint:
    duration_s: float
    batch_size: int
    repeats: int
    wall_s: float  # median of the timed calls
    wall_iqr_s: float  # interquartile range of the timed calls
    cpu_s: float  # median process CPU time per call (all threads)
    clips_per_s: float
    x_realtime: float  # audio seconds encoded per wall second
    peak_memory_mb: float
    frames_per_clip: int
    frame_rate_hz: float
    output_dim: int


def parse_list(text: str, kind: type, name: str) -> list:
    """``"1,10,30"`` -> [1, 10, 30]; a clear error naming the option otherwise."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise XaresError(f"{name}: {text!r} is not a comma list of positive numbers") from e
    if not values or any(v <= 0 for v in values):
        raise XaresError(f"{name}: {text!r} is not a comma list of positive numbers")
    return values


def synthetic_clips(duration_s: float, batch_size: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic noise clips at 16 kHz (an encoder's cost does not depend on what it hears)."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * SAMPLE_RATE)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for _ in range(batch_size)]


def measure_point(
    module, device, autocast, duration_s: float, batch_size: int, repeats: int, warmup: int
) -> BenchPoint:
    from xares_llm.encoders.encoding import encode_clips

    clips = synthetic_clips(duration_s, batch_size)
    for _ in range(warmup):
        encode_clips(module, clips, device, autocast)
    walls, cpus = [], []
    with PeakMemory(device) as memory:
        for _ in range(repeats):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            frames = encode_clips(module, clips, device, autocast)  # returns CPU tensors: the device has synced
            walls.append(time.perf_counter() - start_wall)
            cpus.append(time.process_time() - start_cpu)
    wall = statistics.median(walls)
    q1, _, q3 = statistics.quantiles(walls, n=4) if len(walls) > 1 else (wall, wall, wall)
    return BenchPoint(
        duration_s=duration_s,
        batch_size=batch_size,
        repeats=repeats,
        wall_s=round(wall, 6),
        wall_iqr_s=round(q3 - q1, 6),
        cpu_s=round(statistics.median(cpus), 6),
        clips_per_s=round(batch_size / wall, 3),
        x_realtime=round(batch_size * duration_s / wall, 3),
        peak_memory_mb=round(memory.peak_mb, 1),
        frames_per_clip=int(frames[0].shape[0]),
        frame_rate_hz=round(frames[0].shape[0] / duration_s, 3),
        output_dim=int(frames[0].shape[1]),
    )


def bench_encoder(
    spec: str,
    durations: list[float],
    batch_sizes: list[int],
    device: str | None = "auto",
    precision: str = "fp32",
    repeats: int = 5,
    warmup: int = 1,
    encoder_args: str | dict | None = None,
    on_point: Callable[[BenchPoint], None] | None = None,
) -> dict:
    """Every (duration, batch size) point of one encoder, with what produced the numbers."""
    import torch

    from xares_llm.devices import resolve_device
    from xares_llm.encoders import load_encoder
    from xares_llm.encoders.encoding import AUTOCAST_DTYPES

    if precision not in PRECISIONS:
        raise XaresError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if repeats < 1 or warmup < 0:
        raise XaresError("--repeats must be >= 1 and --warmup >= 0")
    dev = resolve_device(device)
    loaded = load_encoder(spec, encoder_args)
    module = loaded.module.eval().to(dev)
    autocast = AUTOCAST_DTYPES[precision]  # as extraction computes: autocast on any device, or none for fp32
    points = []
    for duration in durations:
        for batch in batch_sizes:
            point = measure_point(module, dev, autocast, float(duration), int(batch), repeats, warmup)
            points.append(point)
            if on_point:
                on_point(point)
    return {
        "encoder": spec,
        "encoder_class": loaded.qualname,
        "encoder_kwargs": loaded.kwargs,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "precision": precision,
        "memory": "torch.cuda.max_memory_allocated" if dev.type == "cuda" else "process peak RSS",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "warmup": warmup,
        "points": [asdict(p) for p in points],
    }
