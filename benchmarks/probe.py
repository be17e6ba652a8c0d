"""`xares probe` against the LALM it stands in for: wall time, rank agreement, and a Track A estimate.

On the demo, for each of several feature variants (`mel` with 80/40/20 bins, a temporally blurred
`mel`, a random projection of the raw waveform), side by side in one run:

- the wall time of `xares probe <id> --tasks demo` (all heads; cold, then again with the pooled
  embeddings cached) against `xares train <id> --mixture demo --recipe demo` + `xares eval`, each a
  CLI process as a user runs it (goal: probe <= 0.1x);
- the Spearman rank correlation between probe scores (each task's primary head) and LALM scores
  across the variants: per demo task, over the variants' mean scores, and over all (variant, task) pairs;
- an estimate for a Track A probe of a Whisper-base-sized store (D = 512 at 50 Hz): per-frame pooling,
  per-step head and per-pair kNN costs measured here on synthetic data of that width, times the clip
  counts and durations of the Track A datasets (approximate public sizes, below).

    python -m benchmarks.probe [--quick] [--threads 1] [--out benchmarks/results/probe.json]

The default run trains five LALMs (the demo recipe's 1200 steps each): about 16 minutes on two
shared CPU cores. `--quick` (2 variants, a tenth of the demo, 100 LALM steps, no warm probe) checks
the harness in about 2; its LALM scores are undertrained, so its rank correlations mean little.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xares_llm.encoders.mel import MelEncoder

SAMPLE_RATE = 16000
# Track A datasets as (train clips, test clips, mean seconds): approximate public sizes of the
# released datasets and splits; the challenge's shards may hold slightly different counts.
TRACK_A_CLIPS = {
    "asvspoof2015": (16375, 193404, 3.5),
    "cremad": (5950, 1490, 2.5),
    "esc50": (1600, 400, 5.0),
    "fluentspeechcommands": (23132, 3793, 2.3),
    "freemusicarchive": (6400, 800, 30.0),
    "fsd50k": (40966, 10231, 7.6),
    "fsdkaggle2018": (9473, 1600, 6.5),
    "gtzan": (900, 100, 30.0),
    "libricount": (4576, 1144, 5.0),
    "nsynth": (289205, 4096, 4.0),
    "speechcommandsv1": (51088, 3081, 1.0),
    "urbansound8k": (7895, 837, 3.6),
    "vocalsound": (15570, 3594, 4.0),
    "voxceleb1": (145265, 8251, 8.2),
    "voxlingua33": (100000, 1600, 10.0),
}
WHISPER_BASE = {"dim": 512, "frame_rate_hz": 50.0, "dtype": "float16"}


class BlurredMel(nn.Module):
    """`mel` with each frame replaced by the mean of the valid frames within WIDTH of it: timing blurred away."""

    sampling_rate = SAMPLE_RATE

    def __init__(self, width: int = 9):
        super().__init__()
        self.mel = MelEncoder()
        self.width = width
        self.output_dim = self.mel.output_dim
        self.frame_rate_hz = self.mel.frame_rate_hz

    def forward(self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None):
        features, mask = self.mel(audio, audio_attention_mask)
        valid = mask.float().unsqueeze(1)  # (B, 1, T')
        pool = nn.functional.avg_pool1d
        summed = pool(features.transpose(1, 2) * valid, self.width, 1, self.width // 2, count_include_pad=True)
        counts = pool(valid, self.width, 1, self.width // 2, count_include_pad=True)
        return (summed / counts.clamp_min(1e-6)).transpose(1, 2), mask


class RandomProjection(nn.Module):
    """log(1 + |W x|) of raw 40 ms waveform frames under a fixed random W: weight-free and phase-sensitive."""

    sampling_rate = SAMPLE_RATE
    frame = 640  # samples: 25 frames per second, like `mel`
    frame_rate_hz = SAMPLE_RATE / 640

    def __init__(self, dim: int = 128, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(self.frame, dim, generator=generator) / math.sqrt(self.frame))
        self.output_dim = dim

    def forward(self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None):
        batch, n_samples = audio.shape
        mask = audio_attention_mask.bool() if audio_attention_mask is not None else None
        audio = audio.float() * mask if mask is not None else audio.float()
        n_frames = math.ceil(n_samples / self.frame)
        frames = nn.functional.pad(audio, (0, n_frames * self.frame - n_samples)).reshape(batch, n_frames, self.frame)
        lengths = mask.sum(dim=1) if mask is not None else torch.full((batch,), n_samples, device=audio.device)
        frame_lengths = torch.div(lengths + self.frame - 1, self.frame, rounding_mode="floor")
        feature_mask = torch.arange(n_frames, device=audio.device)[None] < frame_lengths[:, None]
        return torch.log1p(10.0 * (frames @ self.projection).abs()), feature_mask


@dataclass
class Variant:
    name: str
    spec: str
    kwargs: dict = field(default_factory=dict)


VARIANTS = [
    Variant("mel80", "mel"),
    Variant("mel40", "mel", {"n_mels": 40}),
    Variant("mel20", "mel", {"n_mels": 20}),
    Variant("mel80-blurred", "benchmarks.probe:BlurredMel"),
    Variant("random-projection", "benchmarks.probe:RandomProjection"),
]
QUICK_VARIANTS = ("mel80", "random-projection")


def xares(args: list[str], threads: int) -> float:
    """Run one `xares` command as a user would (a fresh process); its wall seconds."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "xares_llm.cli.main", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"xares {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def bench_variant(variant: Variant, work: Path, data: Path, steps: int | None, threads: int, warm: bool) -> dict:
    from xares_llm.extract.run import extract
    from xares_llm.tasks.schema import resolve_tasks

    cache = work / "cache"
    report = extract(variant.spec, resolve_tasks("demo"), cache, data, encoder_args=variant.kwargs or None)
    common = ["--cache", str(cache), "--device", "cpu"]
    probe_dir, run_dir = work / f"probe-{variant.name}", work / f"run-{variant.name}"
    probe_cold = xares(["probe", report.encoder_id, "--tasks", "demo", "--out", str(probe_dir), *common], threads)
    probe_warm = (
        xares(["probe", report.encoder_id, "--tasks", "demo", "--out", str(probe_dir), *common], threads)
        if warm
        else None
    )
    train_args = ["train", report.encoder_id, "--mixture", "demo", "--recipe", "demo", "--run-dir", str(run_dir)]
    train_s = xares([*train_args, *common, *(["--steps", str(steps)] if steps else [])], threads)
    eval_s = xares(["eval", str(run_dir), "--device", "cpu"], threads)
    probe = json.loads((probe_dir / "probe_scores.json").read_text())
    lalm = json.loads((run_dir / "scores.json").read_text())
    return {
        "variant": variant.name,
        "encoder_id": report.encoder_id,
        # cold: pools the embeddings; warm: reads them from the cache; in_process: without process start-up
        "probe_s": {
            "cold": round(probe_cold, 1),
            "warm": None if probe_warm is None else round(probe_warm, 1),
            "in_process": round(probe["wall_seconds"], 1),
        },
        "lalm_s": {"train": round(train_s, 1), "eval": round(eval_s, 1), "total": round(train_s + eval_s, 1)},
        "probe_over_lalm": round(probe_cold / (train_s + eval_s), 3),
        "probe": {t: p["heads"][p["primary_head"]]["score"] for t, p in probe["tasks"].items()},
        "probe_heads": {t: {h: v["score"] for h, v in p["heads"].items()} for t, p in probe["tasks"].items()},
        "lalm": {t: s["score"] for t, s in lalm["tasks"].items()},
    }


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rho with average ranks for ties; None when one side is constant (undefined)."""
    from scipy.stats import spearmanr

    if len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return round(float(spearmanr(a, b).statistic), 3)


def rank_agreement(rows: list[dict]) -> dict:
    tasks = list(rows[0]["lalm"])
    per_task = {t: spearman([r["probe"][t] for r in rows], [r["lalm"][t] for r in rows]) for t in tasks}
    means = [
        ([np.mean([r["probe"][t] for t in tasks]) for r in rows]),
        ([np.mean([r["lalm"][t] for t in tasks]) for r in rows]),
    ]
    pairs = ([r["probe"][t] for r in rows for t in tasks], [r["lalm"][t] for r in rows for t in tasks])
    return {
        "variants": len(rows),
        "per_task": per_task,  # None: one side scored every variant the same
        "variant_means": spearman(*means),
        "all_pairs": spearman(*pairs),  # includes the between-task spread, so it reads high
    }


def synthetic_store(root: Path, n_clips: int, seconds: float) -> tuple[str, object]:
    """A store part of random Whisper-base-sized frames, to time pooling at that width and rate."""
    from xares_llm.cache import EncoderInfo, FeatureSplit, PartBuffer, SourceInfo, write_part
    from xares_llm.cache.format import ENCODER_FILE, encoder_dir, part_name, split_dir

    dim, rate = WHISPER_BASE["dim"], WHISPER_BASE["frame_rate_hz"]
    info = EncoderInfo(
        "whisper-base-sized-000000000000",
        "synthetic",
        "benchmarks.probe",
        {},
        "0" * 64,
        dim,
        rate,
        SAMPLE_RATE,
        WHISPER_BASE["dtype"],
        "fp32",
        {"max_input_seconds": 30.0},
        "bench",
    )
    encoder_dir(root, info.encoder_id).mkdir(parents=True, exist_ok=True)
    (encoder_dir(root, info.encoder_id) / ENCODER_FILE).write_text(info.to_json())
    rng = np.random.default_rng(0)
    buffer = PartBuffer(dim=dim, dtype=WHISPER_BASE["dtype"])
    for i in range(n_clips):
        buffer.add(f"clip{i:05d}", rng.normal(size=(int(seconds * rate), dim)).astype(np.float32), "{}", 16000)
    shard = "synthetic/train/part0.tar"
    write_part(
        split_dir(root, info.encoder_id, "synthetic", "train") / part_name(shard), buffer, SourceInfo(shard, 1, "0", 0)
    )
    return info.encoder_id, FeatureSplit(root, info.encoder_id, "synthetic", "train")


def unit_costs(work: Path, device: torch.device) -> dict:
    """Seconds per pooled frame, per head step and per kNN (query, memory) pair at Whisper-base width."""
    from xares_llm.metrics import compute_metric
    from xares_llm.probe import classify
    from xares_llm.probe.embeddings import pool_split
    from xares_llm.probe.neighbours import cosine_topk

    _, store = synthetic_store(work / "synthetic", 200, 10.0)
    start = time.perf_counter()
    pool_split(store)
    per_frame = (time.perf_counter() - start) / int(store.frame_counts.sum())

    rng = np.random.default_rng(0)
    dim, n_train, n_classes = WHISPER_BASE["dim"], 3000, 20
    centres = rng.normal(size=(n_classes, dim)).astype(np.float32)
    labels = rng.integers(n_classes, size=n_train + 500)
    x = (centres[labels] + 3 * rng.normal(size=(len(labels), dim))).astype(np.float32)
    refs = [[f"class {c}"] for c in labels.tolist()]
    data = classify.class_data(x[:n_train], refs[:n_train], x[n_train:], multi=False, seed=0)

    def score(predictions, references):
        return compute_metric("accuracy", predictions, references).score

    per_step = {}
    for head in ("linear", "mlp"):
        start = time.perf_counter()
        _, hp = classify.train_dense(head, data, score, 0, device)
        per_step[head] = (time.perf_counter() - start) / hp["steps"]
    queries, memory = x[:1000], np.concatenate([x] * 4)
    start = time.perf_counter()
    cosine_topk(queries, memory, 20, device)
    per_pair = (time.perf_counter() - start) / (len(queries) * len(memory))
    return {"pool_per_frame_s": per_frame, "step_s": per_step, "knn_per_pair_s": per_pair}


def track_a_estimate(costs: dict) -> dict:
    """Per Track A task: pooling + linear + MLP + kNN seconds from the unit costs and the clip counts."""
    from xares_llm.probe import classify

    tasks, total = {}, 0.0
    for task, (n_train, n_test, seconds) in TRACK_A_CLIPS.items():
        n_val = min(classify.VAL_MAX_CLIPS, round(n_train * classify.VAL_FRACTION))
        n_fit = n_train - n_val
        steps = min(classify.MAX_STEPS, max(classify.MIN_STEPS, classify.EPOCHS * math.ceil(n_fit / 256)))
        pool = costs["pool_per_frame_s"] * (n_train + n_test) * seconds * WHISPER_BASE["frame_rate_hz"]
        heads = {h: costs["step_s"][h] * steps for h in ("linear", "mlp")}
        heads["knn"] = costs["knn_per_pair_s"] * (n_val * n_fit + n_test * n_train)
        task_total = pool + sum(heads.values())
        tasks[task] = {"pool_s": round(pool, 1), **{f"{h}_s": round(v, 1) for h, v in heads.items()}}
        tasks[task]["total_s"] = round(task_total, 1)
        total += task_total
    return {"tasks": tasks, "total_s": round(total, 1), "total_min": round(total / 60, 1)}


def main() -> None:
    from benchmarks.common import write_result
    from xares_llm.audio.demo_data import DemoSize, write_demo_shards

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="timing check: 2 variants, a tenth of the demo, 100 LALM steps, no warm probe",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every process")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = DemoSize(30, 10) if args.quick else DemoSize()
    steps = 100 if args.quick else None  # None: the demo recipe's own 1200 steps
    variants = [v for v in VARIANTS if not args.quick or v.name in QUICK_VARIANTS]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_demo_shards(work / "data", size)
        rows = []
        for variant in variants:
            rows.append(bench_variant(variant, work, work / "data", steps, args.threads, warm=not args.quick))
            row = rows[-1]
            warm = "" if row["probe_s"]["warm"] is None else f" (warm {row['probe_s']['warm']:.1f})"
            print(
                f"{variant.name:<18} probe {row['probe_s']['cold']:>6.1f} s{warm}"
                f"  train+eval {row['lalm_s']['total']:>6.1f} s  ratio {row['probe_over_lalm']:.3f}"
            )
        costs = unit_costs(work, torch.device("cpu"))
    estimate = track_a_estimate(costs)
    result = {
        "benchmark": "probe",
        "goal": "probe_over_lalm <= 0.1",
        "quick": args.quick,
        "threads": args.threads,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "demo_size": {
            "train_clips_per_shard": size.train_clips_per_shard,
            "test_clips_per_shard": size.test_clips_per_shard,
        },
        "lalm_steps": steps or 1200,
        "variants": rows,
        "probe_over_lalm": {
            "min": min(r["probe_over_lalm"] for r in rows),
            "median": float(np.median([r["probe_over_lalm"] for r in rows])),
            "max": max(r["probe_over_lalm"] for r in rows),
        },
        "spearman_probe_vs_lalm": rank_agreement(rows),
        "whisper_base_track_a_estimate": {
            "store": WHISPER_BASE,
            "unit_costs": costs,
            "clip_counts": {
                "source": "approximate public dataset sizes",
                **{k: list(v) for k, v in TRACK_A_CLIPS.items()},
            },
            **estimate,
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_result(args.out, result)
    print(json.dumps(result["spearman_probe_vs_lalm"], indent=2))
    print(f"Track A probe of a Whisper-base store, estimated: {estimate['total_min']} min on this CPU")


if __name__ == "__main__":
    main()
