"""Extraction overhead: `xares extract` wall time / bare encoder forward time on the same batches.

Everything extraction does beyond the encoder (loading it, reading tars, decoding, resampling,
batching, trimming, writing Zarr parts) shows up in the ratio; 1.0 would be a free pipeline, and a
ratio below 1 is a measurement error (flagged in the JSON). Both modes run interleaved in one
process, 5+ rounds after a warm-up, each extraction into a fresh store from shards dropped from the
page cache; encoders at random init (timing only). On `--device` (CUDA when present) both modes
report audio hours per second beside the ratio.

    python -m benchmarks.extract_overhead [--clips 48] [--repeats 5] [--quick] [--out ...json]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
import webdataset as wds

from benchmarks.common import (
    audio_seconds,
    drop_page_cache,
    interleaved,
    load_average,
    ratio,
    save_random_whisper,
    write_clips_shards,
    write_result,
)
from xares_llm.audio.decoding import decode_audio
from xares_llm.constants import DEFAULT_BATCH_SECONDS
from xares_llm.devices import resolve_device
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import pad_batch, padded_input_samples
from xares_llm.extract.encode import length_batches
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import TaskConfig


def bench_task(n_shards: int) -> TaskConfig:
    shards = [f"Bench/train/bench_{i:04d}.tar" for i in range(n_shards)]
    return TaskConfig.model_validate(
        {
            "name": "bench",
            "track": "A",
            "dataset": {"name": "bench", "repo": None, "train": shards, "test": shards[:1]},
            "labels": {"train": "label", "test": "label"},
            "prompt": "bench",
            "metric": {"name": "accuracy"},
        }
    )


def bare_forward(
    spec: str, kwargs: dict, task: TaskConfig, data: Path, batch_seconds: float, device: torch.device
) -> tuple:
    """Decode everything first (untimed); the returned call runs only padding + forward over the same batches."""
    loaded, _ = prepare_encoder(spec, kwargs, str(device), "float16")
    module = loaded.module
    padded = padded_input_samples(module, spec)  # the batches extraction forms (Whisper: by 30 s windows)
    batches = []
    for shard in task.dataset.shards("train"):
        clips = [decode_audio(s["flac"]) for s in wds.WebDataset(str(data / shard), shardshuffle=False)]
        batches += [[clips[i] for i in b] for b in length_batches([len(c) for c in clips], batch_seconds, padded)]

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                audio, mask = pad_batch(batch)
                module(audio.to(device), mask.to(device))
        if device.type == "cuda":  # done when the GPU is, not when its kernels are queued
            torch.cuda.synchronize(device)

    return run, audio_seconds([c for b in batches for c in b])


def measure(
    name: str, spec: str, kwargs: dict, task: TaskConfig, root: Path, repeats: int, device: torch.device
) -> dict:
    """Bare forward and a full `extract` (fresh store, shards dropped from the page cache), interleaved."""
    data, cache = root / "data", root / f"cache-{name}"
    forward, seconds = bare_forward(spec, kwargs, task, data, DEFAULT_BATCH_SECONDS, device)

    def full_extract() -> None:
        extract(spec, [task], cache, data, splits=["train"], encoder_args=kwargs, device=str(device))

    def before(mode: str) -> None:
        if mode == "extract":
            shutil.rmtree(cache, ignore_errors=True)
            drop_page_cache(data)

    load_before = load_average()
    stats = interleaved({"bare_forward": forward, "extract": full_extract}, repeats, warmup=1, before=before)
    row = {
        "encoder": name,
        "audio_seconds": round(seconds, 1),
        "bare_forward": {k: v for k, v in stats["bare_forward"].items() if k != "walls"},
        "extract": {k: v for k, v in stats["extract"].items() if k != "walls"},
        # extraction does strictly more work than the bare forward on the same batches: below 1 is an error
        "ratio": ratio(stats["extract"]["wall_s"], stats["bare_forward"]["wall_s"], minimum=1.0),
        "audio_hours_per_s": {m: round(seconds / 3600 / stats[m]["wall_s"]["median"], 5) for m in stats},
        "device": str(device),
        "load_average": {"before": load_before, "after": load_average()},
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=48, help="clips per shard (4 shards)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after one warm-up (at least 5)")
    parser.add_argument("--quick", action="store_true", help="1 clip per shard, Whisper-tiny-sized")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract_overhead.json"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    clips = 1 if args.quick else args.clips
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = bench_task(4)
        write_clips_shards(tmp / "data", task.dataset.shards("train"), clips, (2.0, 12.0))
        size = "whisper-tiny" if args.quick else "whisper-base"  # every Whisper call costs 30 s windows
        encoders = {
            "mel": ("mel", {}),
            f"{size}-sized": (size, {"model": str(save_random_whisper(size, tmp / "whisper"))}),
        }
        for name, (spec, kwargs) in encoders.items():
            results.append(measure(name, spec, kwargs, task, tmp, args.repeats, device))
    write_result(
        args.out,
        {
            "benchmark": "extract_overhead",
            "goal": "ratio <= 1.15",
            "clips_per_shard": clips,
            "repeats": args.repeats,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
