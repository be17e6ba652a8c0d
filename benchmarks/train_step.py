"""Training step cost: from the feature cache vs. LLM-only vs. encoder-in-the-loop (the reference design).

Per encoder, the same examples go through three steps, interleaved step by step:

- llm_only: features already in memory, only projector + LLM forward/backward/optimiser step
- cached:   what `xares train` does: read the frame windows from the Zarr store, then the step
- online:   decode the audio, crop it, run the frozen encoder, then the step (the reference system)

LLM = a SmolLM2-135M-sized Llama (random init) with the reference LoRA, batch 4, on `--device`
(CUDA when present: then steps per second on the GPU are reported beside the ratios). Encoders: `mel`,
a Whisper-base-sized and a Whisper-large-sized encoder (random init). Reports median and IQR of
wall and CPU seconds per step over 5+ steps after a warm-up, and the ratios cached / llm_only
(below 1 is flagged as a measurement error: the cached step does strictly more) and online / cached
(with whether the two are resolved: their IQRs do not overlap). The cached path reads cold: a fresh
reader each step and the store's files dropped from the page cache. Step times on a shared CPU
wander by about 10 %, so its store reads are also timed alone (`read_over_llm_only`).

    python -m benchmarks.train_step [--steps 5] [--large-steps 5] [--quick] [--out ...json]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import webdataset as wds

from benchmarks.common import (
    SMOLLM2_135M,
    drop_page_cache,
    load_average,
    ratio,
    save_random_whisper,
    summary,
    write_clips_shards,
    write_result,
)
from benchmarks.extract_overhead import bench_task
from xares_llm.audio.decoding import decode_audio
from xares_llm.constants import SAMPLE_RATE
from xares_llm.devices import autocast_dtype, resolve_device
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import encode_clips
from xares_llm.extract.run import extract
from xares_llm.lalm.checkpoints import build_model
from xares_llm.lalm.model import Batch
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.sampler import BatchBuilder, MixtureSampler, pad_frames, window_frames
from xares_llm.lalm.tokenizer import load_tokenizer
from xares_llm.tasks.data import open_splits

QUICK_LAYERS = 2  # --quick: SmolLM2-135M's width with 2 of its 30 layers, so 5+ steps per mode fit in a minute
QUICK_VOCABULARY = 512


def optimiser_step(model, optimizer, batch: Batch, device: torch.device, scaler=None, amp_dtype=None) -> None:
    """One step as xares_llm/lalm/train.py takes it: autocast forward, scaled backward (fp16), clip, step."""
    with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
        loss = model(batch.to(device)).loss
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":  # the step is done when the GPU is, not when its kernels are queued
        torch.cuda.synchronize(device)


def bench_encoder(
    name: str,
    spec: str,
    kwargs: dict,
    steps: int,
    root: Path,
    task,
    audio_bytes: dict,
    llm: dict,
    device: torch.device,
    recipe_name: str = "reference",
) -> dict:
    """Per-step wall and CPU of the three modes under one packaged recipe (its precision on CUDA)."""
    cache = root / f"cache-{name}-{recipe_name}"
    report = extract(spec, [task], cache, root / "data", splits=["train"], encoder_args=kwargs, device=str(device))
    loaded, info = prepare_encoder(spec, kwargs, str(device), "float16")
    encoder = loaded.module
    recipe = load_recipe(recipe_name, {"llm": {"config": llm, "tokenizer": "byte"}})
    amp_dtype = autocast_dtype(recipe.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    tokenizer = load_tokenizer("byte")
    data = open_splits(cache, report.encoder_id, [task], "train")
    sampler = MixtureSampler(data, [1.0], window_frames(recipe.window_seconds, info.frame_rate_hz), 4, 0)
    builder = BatchBuilder(data, tokenizer)
    model = build_model(recipe, info.output_dim, tokenizer).to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def online_batch(examples) -> Batch:
        clips = []
        for e in examples:
            key = data[0].store.key(int(data[0].clip_index[e.pair]))
            audio = decode_audio(audio_bytes[key])
            start = int(e.start / info.frame_rate_hz * SAMPLE_RATE)
            clips.append(audio[start : start + int(recipe.window_seconds * SAMPLE_RATE)])
        frames = encode_clips(encoder, clips, device)  # no_grad, eval: the frozen encoder
        return Batch(
            features=pad_frames([f.numpy() for f in frames]),
            frame_lengths=torch.tensor([len(f) for f in frames]),
            prompt_ids=[builder.prompt_ids[0]] * len(examples),
            answer_ids=[builder.encode(data[0].targets[e.pair]) for e in examples],
        )

    modes = ["llm_only", "cached", "online"]
    walls: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[float]] = {m: [] for m in modes}
    reads: list[float] = []  # the cached path's store reads alone (cold chunks), inside its timing
    frames = []
    load_before = load_average()
    for step in range(steps + 1):  # step 0 warms up every path
        examples = sampler.examples(step)
        prebuilt = builder(examples)
        frames += prebuilt.frame_lengths.tolist()
        for mode in modes[step % 3 :] + modes[: step % 3]:  # rotate the order: no mode always goes first
            if mode == "cached":  # cold: a fresh reader, and the store's files dropped from the page cache
                cold = BatchBuilder(open_splits(cache, report.encoder_id, [task], "train"), tokenizer)
                drop_page_cache(cache)
            start, cpu = time.perf_counter(), time.process_time()
            if mode == "llm_only":
                batch = prebuilt
            elif mode == "cached":
                batch = cold(examples)
                if step:
                    reads.append(time.perf_counter() - start)
            else:
                batch = online_batch(examples)
            optimiser_step(model, optimizer, batch, device, scaler, amp_dtype)
            if step:
                walls[mode].append(time.perf_counter() - start)
                cpus[mode].append(time.process_time() - cpu)
    wall = {m: summary(walls[m]) for m in modes}
    row = {
        "encoder": name,
        "recipe": recipe_name,
        "precision": str(amp_dtype).removeprefix("torch.") if amp_dtype else "fp32",
        "mean_frames_per_example": round(float(np.mean(frames)), 1),
        "wall_s": wall,
        "cpu_s": {m: summary(cpus[m]) for m in modes},
        "cached_read_s": summary(reads),
        # cached and online do the llm_only step plus more work: a ratio below 1 is a measurement error
        "cached_over_llm_only": ratio(wall["cached"], wall["llm_only"], minimum=1.0),
        "online_over_llm_only": ratio(wall["online"], wall["llm_only"], minimum=1.0),
        "online_over_cached": ratio(wall["online"], wall["cached"]),
        "online_vs_cached_resolved": not overlap(walls["online"], walls["cached"]),
        "read_over_llm_only": round(statistics.median(reads) / wall["llm_only"]["median"], 5),
        "steps_per_s": {m: round(1 / wall[m]["median"], 3) for m in modes},
        "device": str(device),
        "steps": steps,
        "load_average": {"before": load_before, "after": load_average()},
    }
    print(row, flush=True)
    return row


def overlap(a: list[float], b: list[float]) -> bool:
    """Whether the interquartile ranges of two timings overlap (then their order is not resolved)."""
    qa, qb = np.percentile(a, [25, 75]), np.percentile(b, [25, 75])
    return bool(qa[0] <= qb[1] and qb[0] <= qa[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per encoder (after one warm-up, >= 5)")
    parser.add_argument("--large-steps", type=int, default=5, help="timed steps for the Whisper-large-sized encoder")
    quick_help = f"mel only, a {QUICK_LAYERS}-layer LLM, {QUICK_VOCABULARY} tokens"
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_step.json"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    if min(args.steps, args.large_steps) < 5:
        parser.error("at least 5 timed steps: fewer cannot resolve a 10 % difference on a shared CPU")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        task = bench_task(2)
        write_clips_shards(root / "data", task.dataset.shards("train"), 8, (6.0, 10.0))
        audio_bytes = {
            s["__key__"]: s["flac"]
            for shard in task.dataset.shards("train")
            for s in wds.WebDataset(str(root / "data" / shard), shardshuffle=False)
        }
        encoders = [
            ("mel", "mel", {}, args.steps),
            (
                "whisper-base-sized",
                "whisper-base",
                {"model": str(save_random_whisper("whisper-base", root / "wb"))},
                args.steps,
            ),
            (
                "whisper-large-sized",
                "whisper-large-v3",
                {"model": str(save_random_whisper("whisper-large", root / "wl"))},
                args.large_steps,
            ),
        ]
        llm, llm_name = SMOLLM2_135M, "SmolLM2-135M-sized"
        if args.quick:
            encoders = encoders[:1]
            # the byte tokenizer needs few ids; SmolLM2's 49 152-row LM head would dominate every step
            llm = {**SMOLLM2_135M, "num_hidden_layers": QUICK_LAYERS, "vocab_size": QUICK_VOCABULARY}
            llm_name = f"SmolLM2-135M-wide, {QUICK_LAYERS} layers, {QUICK_VOCABULARY}-token vocabulary"
        results = [
            bench_encoder(name, spec, kwargs, steps, root, task, audio_bytes, llm, device) | {"llm": llm_name}
            for name, spec, kwargs, steps in encoders
        ]
    write_result(args.out, {"benchmark": "train_step", "goal": "cached_over_llm_only <= 1.05", "results": results})


if __name__ == "__main__":
    main()
