"""Extraction overhead: `xares extract` wall time / bare encoder forward time on the same batches.

Everything extraction does beyond the encoder (reading tars, decoding, resampling, batching,
trimming, writing Zarr parts) shows up in the ratio; 1.0 would be a free pipeline. Both timings
run side by side in one process, encoders at random init (timing only).

    python -m benchmarks.extract_overhead [--clips 48] [--out benchmarks/results/extract_overhead.json]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import webdataset as wds

from benchmarks.common import audio_seconds, save_random_whisper, timed, write_clips_shards, write_result
from xares_llm.audio import decode_audio
from xares_llm.constants import DEFAULT_BATCH_SECONDS
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import pad_batch
from xares_llm.extract import extract, length_batches
from xares_llm.tasks import TaskConfig


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


def bare_forward_seconds(spec: str, kwargs: dict, task: TaskConfig, data: Path, batch_seconds: float) -> float:
    """Decode everything first (untimed), then time only padding + forward over the same batches."""
    loaded, _ = prepare_encoder(spec, kwargs, "cpu", "float16")
    module = loaded.module
    batches = []
    for shard in task.dataset.shards("train"):
        clips = [decode_audio(s["flac"]) for s in wds.WebDataset(str(data / shard), shardshuffle=False)]
        batches += [[clips[i] for i in b] for b in length_batches([len(c) for c in clips], batch_seconds)]

    def run(chosen: list) -> None:
        with torch.inference_mode():
            for batch in chosen:
                audio, mask = pad_batch(batch)
                module(audio, mask)

    run(batches[:1])  # warm-up
    return timed(lambda: run(batches)), audio_seconds([c for b in batches for c in b])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=48, help="clips per shard (4 shards)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract_overhead.json"))
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = bench_task(4)
        write_clips_shards(tmp / "data", task.dataset.shards("train"), args.clips, (2.0, 12.0))
        encoders = {
            "mel": ("mel", {}),
            "whisper-base-sized": ("whisper-base", {"model": str(save_random_whisper("whisper-base", tmp / "wb"))}),
        }
        for name, (spec, kwargs) in encoders.items():
            forward, seconds = bare_forward_seconds(spec, kwargs, task, tmp / "data", DEFAULT_BATCH_SECONDS)
            cache = tmp / f"cache-{name}"
            extract_wall = timed(
                lambda spec=spec, kwargs=kwargs, cache=cache: extract(
                    spec, [task], cache, tmp / "data", splits=["train"], encoder_args=kwargs
                )
            )
            row = {
                "encoder": name,
                "audio_seconds": round(seconds, 1),
                "bare_forward_s": round(forward, 3),
                "extract_wall_s": round(extract_wall, 3),
                "ratio": round(extract_wall / forward, 3),
            }
            print(row)
            results.append(row)
    write_result(args.out, {"benchmark": "extract_overhead", "goal": "ratio <= 1.15", "results": results})


if __name__ == "__main__":
    main()
