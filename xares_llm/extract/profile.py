"""One entry of a store's extraction profile: what a run cost and what produced it."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from xares_llm.cache import EncoderInfo
from xares_llm.devices import device_name
from xares_llm.extract.report import ExtractReport
from xares_llm.extract.stream import StageSeconds, StreamSettings
from xares_llm.memory import PeakMemory


def run_profile(
    report: ExtractReport,
    info: EncoderInfo,
    stages: StageSeconds,
    encode_s: float,
    wall_s: float,
    memory: PeakMemory,
    settings: StreamSettings,
) -> dict:
    """One entry of the store's extraction profile: this run's cost and what produced it."""
    device = memory.device
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        **extraction_profile(
            wall_s,
            report.audio_seconds,
            report.clips,
            str(device),
            info.encoder_precision,
            stages.decode,
            encode_s,
            stages.write,
            memory.peak_mb,
            decode_wait_s=stages.decode_wait,
        ),
        "device_name": device_name(device),
        "memory": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS",
        "dtype": info.dtype,
        "parts": len(report.written),
        "decode_workers": settings.decode_workers,
        "batch_seconds": settings.batch_seconds,
        "window_seconds": settings.limits.seconds,
        "xares_version": info.xares_version,
    }


def extraction_profile(
    wall_s: float,
    audio_seconds: float,
    clips: int,
    device: str,
    precision: str,
    decode_s: float,
    encode_s: float,
    write_s: float,
    peak_memory_mb: float | None = None,
    decode_wait_s: float = 0.0,
) -> dict:
    """What a real extraction cost, in the units `xares bench` reports, for the store's profile file.

    decode/encode/write seconds are each stage's busy time; they overlap in the pipelined extractor,
    so their sum may exceed the wall time. decode is summed over the decoders; decode_wait is what
    the encoder loop spent waiting for them.
    """
    wall = max(wall_s, 1e-9)
    return {
        "wall_s": round(wall_s, 3),
        "clips": clips,
        "audio_hours": round(audio_seconds / 3600, 6),
        "audio_hours_per_s": round(audio_seconds / 3600 / wall, 6),
        "x_realtime": round(audio_seconds / wall, 3),
        "clips_per_s": round(clips / wall, 3),
        "device": device,
        "precision": precision,
        "peak_memory_mb": None if peak_memory_mb is None else round(peak_memory_mb, 1),
        "seconds": {
            "decode": round(decode_s, 3),
            "decode_wait": round(decode_wait_s, 3),
            "encode": round(encode_s, 3),
            "write": round(write_s, 3),
        },
    }
