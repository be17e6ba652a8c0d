"""Helpers shared by the benchmarks: synthetic shards, random-init encoders, timing, JSON output.

Timing rules every benchmark follows: modes interleaved round by round, at least 5 timed repeats
after warm-up, median and interquartile range, process CPU time beside wall time, cold reads made
cold (page cache dropped), the load average recorded, and a physically impossible ratio flagged as
a measurement error instead of reported.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from xares_llm.audio.demo_data import tone, with_noise, write_tar
from xares_llm.constants import SAMPLE_RATE

# Whisper encoder sizes (d_model, layers, heads, mel bins) as in the released checkpoints.
WHISPER_SIZES = {
    "whisper-tiny": {"d_model": 384, "encoder_layers": 4, "encoder_attention_heads": 6, "num_mel_bins": 80},
    "whisper-base": {"d_model": 512, "encoder_layers": 6, "encoder_attention_heads": 8, "num_mel_bins": 80},
    "whisper-large": {"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "num_mel_bins": 128},
}
# SmolLM2-135M's architecture, random init.
SMOLLM2_135M = {
    "model_type": "llama",
    "vocab_size": 49152,
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}


def save_random_whisper(size: str, directory: Path) -> Path:
    """A random-init Whisper of a released size, saved so `WhisperEncoder(model=dir)` loads it."""
    from transformers import WhisperConfig, WhisperModel

    dims = WHISPER_SIZES[size]
    config = WhisperConfig(
        **dims,
        decoder_layers=1,
        decoder_attention_heads=dims["encoder_attention_heads"],
        encoder_ffn_dim=4 * dims["d_model"],
        decoder_ffn_dim=4 * dims["d_model"],
    )
    torch.manual_seed(0)
    WhisperModel(config).save_pretrained(directory)
    return directory


def write_clips_shards(root: Path, relative: list[str], clips_per_shard: int, seconds: tuple[float, float]) -> None:
    """Shards of tonal clips with a `label` field, lengths uniform in `seconds`."""
    rng = np.random.default_rng(0)
    for shard in relative:
        samples = []
        for i in range(clips_per_shard):
            audio = with_noise(tone(rng.uniform(200, 2000), rng.uniform(*seconds), rng), rng)
            samples.append((f"clip_{i:05d}", audio, {"label": f"class {i % 4}"}))
        write_tar(root / shard, samples)


def timed_call(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds over all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(values: list[float]) -> dict:
    """Median and interquartile range: robust to the odd slow repeat of a shared machine."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": round(float(median), 5), "iqr": round(float(q3 - q1), 5), "n": len(values)}


def interleaved(
    modes: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    before: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Time every mode `repeats` times after `warmup` untimed rounds, the order rotating each round,
    so drift of a shared machine (other load, thermal) falls on every mode alike.

    `before(mode)` runs untimed ahead of each call (clearing a cache, dropping page cache).
    Returns per mode: wall and cpu summaries and the raw wall times.
    """
    if repeats < 5:
        raise ValueError("at least 5 timed repeats: fewer cannot resolve a 10 % difference on a shared CPU")
    names = list(modes)
    walls: dict[str, list[float]] = {m: [] for m in names}
    cpus: dict[str, list[float]] = {m: [] for m in names}
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for mode in names[shift:] + names[:shift]:
            if before:
                before(mode)
            wall, cpu = timed_call(modes[mode])
            if round_ >= warmup:
                walls[mode].append(wall)
                cpus[mode].append(cpu)
    return {m: {"wall_s": summary(walls[m]), "cpu_s": summary(cpus[m]), "walls": walls[m]} for m in names}


def drop_page_cache(root: Path) -> int:
    """Ask the kernel to drop every file under `root` from the page cache, so the next read is cold.

    POSIX_FADV_DONTNEED drops clean pages only; files just written are flushed first (fsync).
    Returns how many files were dropped.
    """
    count = 0
    for path in Path(root).rglob("*"):
        if not path.is_file():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            count += 1
        finally:
            os.close(fd)
    return count


def ratio(numerator: dict, denominator: dict, minimum: float | None = None) -> dict:
    """Ratio of two medians, with the spread it can carry, and a flag when it cannot be physical.

    `minimum`: the smallest value the ratio can take if both were measured right (1.0 when the
    numerator does strictly more work); a ratio below it is reported as a measurement error, not a result.
    """
    value = numerator["median"] / denominator["median"]
    spread = value * (numerator["iqr"] / numerator["median"] + denominator["iqr"] / denominator["median"]) / 2
    out = {"value": round(value, 4), "approx_iqr": round(spread, 4)}
    if minimum is not None and value < minimum:
        out = {"measurement_error": f"ratio {value:.3f} is below its physical minimum {minimum}", **out}
    return out


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def write_result(path: Path, result: dict) -> None:
    result = {
        "machine": {
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor(),
            "cpu_count": os.cpu_count(),
            "load_average_at_end": load_average(),
        },
        **result,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


def audio_seconds(clips: list[np.ndarray]) -> float:
    return sum(len(c) for c in clips) / SAMPLE_RATE
