"""Helpers shared by the benchmarks: synthetic shards, random-init encoders, timing, JSON output."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from xares_llm.constants import SAMPLE_RATE
from xares_llm.demo_data import tone, with_noise, write_tar

# Whisper encoder sizes (d_model, layers, heads, mel bins) as in the released checkpoints.
WHISPER_SIZES = {
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


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    """Best wall time of `repeats` calls, in seconds (noisy machines: the minimum is the signal)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_result(path: Path, result: dict) -> None:
    result = {
        "machine": {
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "cpu": platform.processor(),
        },
        **result,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


def audio_seconds(clips: list[np.ndarray]) -> float:
    return sum(len(c) for c in clips) / SAMPLE_RATE
