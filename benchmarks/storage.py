"""Store size per dtype: bytes per audio hour, feature error, write + read time, and the demo scores.

For `mel` and a Whisper-base-sized encoder (random init: sizes and timing only), synthetic shards
are extracted once at float32 with `xares extract`, and those frames written in each store dtype
(float32, float16, int8, bitround 7/5/3/2) by the part writer extraction uses; the bytes on disk
per audio hour, the ratio to float16 and the feature error against float32 are reported. Writing
the part and reading every clip back is timed per dtype, interleaved, 5+ rounds after a warm-up.
Then the demo recipe is extracted, trained and evaluated with `mel` at each dtype (same data, same
seed) and its scores put beside float16's.

Goal: a dtype at <= 0.3x the float16 bytes with every demo score within 0.01 of float16's.

    python -m benchmarks.storage [--clips 12] [--repeats 5] [--quick] [--out ...json]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import interleaved, load_average, save_random_whisper, write_clips_shards, write_result
from benchmarks.extract_overhead import bench_task
from xares_llm.audio.demo_data import DemoSize, write_demo_shards
from xares_llm.cache import FeatureSplit, PartBuffer, SourceInfo, write_part
from xares_llm.cache import reader as cache_reader
from xares_llm.cache.chunks import CHUNK_CACHE_BYTES, ChunkCache
from xares_llm.extract.run import extract
from xares_llm.lalm.recipe import load_recipe
from xares_llm.pipeline import run_pipeline
from xares_llm.tasks.schema import TaskConfig

DTYPES = ("float32", "float16", "int8", "bitround7", "bitround5", "bitround3", "bitround2")
GOAL_RATIO, GOAL_SCORE = 0.3, 0.01
QUICK_STEPS = 60  # --quick checks the harness; its scores say nothing about the dtypes


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def feature_error(store: FeatureSplit, exact: FeatureSplit) -> dict:
    """Relative RMS error and the largest absolute error, against the float32 store."""
    sq_err = sq_ref = 0.0
    worst = 0.0
    for i in range(len(exact)):
        ref = exact.frames(i).astype(np.float64)
        diff = store.frames(i).astype(np.float64) - ref
        sq_err, sq_ref = sq_err + float((diff**2).sum()), sq_ref + float((ref**2).sum())
        worst = max(worst, float(np.abs(diff).max()) if diff.size else 0.0)
    return {"relative_rms": round((sq_err / max(sq_ref, 1e-30)) ** 0.5, 6), "max_abs": round(worst, 6)}


def sizes(name: str, spec: str, kwargs: dict, task: TaskConfig, data: Path, root: Path, repeats: int) -> dict:
    """Extract once at float32, then write those frames in every dtype through the part writer (what
    `xares extract --dtype` runs after the encoder, whose output does not depend on the store dtype):
    bytes on disk per audio hour, ratio to float16, error against float32; write + read timed."""
    report = extract(spec, [task], root / f"cache-{name}", data, splits=["train"], encoder_args=kwargs,
                     dtype="float32", force=True)  # fmt: skip
    exact = FeatureSplit(root / f"cache-{name}", report.encoder_id, task.dataset.name, "train")
    clips = [exact.frames(i) for i in range(len(exact))]
    hours = report.audio_seconds / 3600
    timing = write_read_times(clips, root / name, repeats)
    rows = {}
    for dtype in DTYPES:
        store = FeatureSplit(root / name / dtype, "e", "d", "train")
        stored = folder_bytes(store.parts[0])
        frames = int(store.frame_counts.sum())
        rows[dtype] = {
            "bytes": stored,
            "mb_per_audio_hour": round(stored / hours / 1e6, 2),
            "bytes_per_frame": round(stored / max(1, frames), 2),
            "error_vs_float32": feature_error(store, exact),
            "write_read_s": timing[dtype],
        }
    for row in rows.values():
        row["ratio_to_float16"] = round(row["bytes"] / rows["float16"]["bytes"], 4)
    return {
        "encoder": name,
        "output_dim": int(clips[0].shape[1]),
        "audio_hours": round(hours, 5),
        "frames": sum(len(c) for c in clips),
        "dtypes": rows,
    }


def write_read_times(clips: list[np.ndarray], root: Path, repeats: int) -> dict:
    """Write one part of every clip in each dtype, then read every clip back from a cold chunk cache."""
    dim = clips[0].shape[1]

    def mode(dtype: str):
        def run() -> None:
            buffer = PartBuffer(dim=dim, dtype=dtype)
            for i, frames in enumerate(clips):
                buffer.add(f"c{i}", frames, "{}", 1)
            base = root / dtype
            write_part(base / "features" / "e" / "d" / "train" / "part-x.zarr", buffer, SourceInfo("x", 0, "", 0))
            cache_reader.CHUNK_CACHE = ChunkCache(CHUNK_CACHE_BYTES)
            store = FeatureSplit(base, "e", "d", "train")
            for i in range(len(store)):
                store.frames(i)

        return run

    stats = interleaved({dtype: mode(dtype) for dtype in DTYPES}, repeats, warmup=1)
    return {dtype: {k: v for k, v in s.items() if k != "walls"} for dtype, s in stats.items()}


def demo_scores(root: Path, quick: bool, steps: int | None) -> dict:
    """Train and evaluate the demo recipe from a `mel` store of each dtype; scores per task."""
    data = root / "demo-data"
    write_demo_shards(data, DemoSize(60, 20) if quick else DemoSize())
    recipe = load_recipe("demo", {"steps": steps} if steps else {})
    scores = {}
    for dtype in DTYPES:
        cache, run_dir = root / f"demo-cache-{dtype}", root / f"run-{dtype}"
        result = run_pipeline("mel", "demo", recipe, cache, data, run_dir, dtype=dtype)
        scores[dtype] = {name: round(s.score, 4) for name, s in result.scores.tasks.items()}
        print(dtype, scores[dtype], flush=True)
    return {"steps": recipe.steps, "demo_size": "DemoSize(60, 20)" if quick else "DemoSize()", "scores": scores}


def verdict(mel: dict, demo: dict) -> dict:
    """Per dtype: bytes ratio to float16 (mel), largest demo score difference to float16, goal met?"""
    base = demo["scores"]["float16"]
    rows = {}
    for dtype in DTYPES:
        diff = max(abs(demo["scores"][dtype][t] - base[t]) for t in base)
        ratio_ = mel["dtypes"][dtype]["ratio_to_float16"]
        rows[dtype] = {
            "ratio_to_float16": ratio_,
            "max_score_diff": round(diff, 4),
            "goal_met": ratio_ <= GOAL_RATIO and diff <= GOAL_SCORE,
        }
    return {
        "per_dtype": rows,
        "goal_met_by": [d for d, r in rows.items() if r["goal_met"]],
        # float32 and float16 features differ by float16 rounding only: their score gap is the noise of one seed
        "float32_vs_float16": rows["float32"]["max_score_diff"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12, help="clips per shard (2 shards, 5-30 s each)")
    parser.add_argument("--repeats", type=int, default=5, help="timed write+read rounds after one warm-up")
    parser.add_argument("--steps", type=int, default=None, help="demo training steps [default: the recipe's]")
    parser.add_argument("--quick", action="store_true", help=f"4 clips per shard, a smaller demo, {QUICK_STEPS} steps")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/storage.json"))
    args = parser.parse_args()
    clips = 4 if args.quick else args.clips
    steps = args.steps or (QUICK_STEPS if args.quick else None)
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = bench_task(2)
        write_clips_shards(tmp / "data", task.dataset.shards("train"), clips, (5.0, 30.0))
        whisper = {"model": str(save_random_whisper("whisper-base", tmp / "whisper"))}
        encoders = [sizes("mel", "mel", {}, task, tmp / "data", tmp, args.repeats)]
        encoders.append(sizes("whisper-base-sized", "whisper-base", whisper, task, tmp / "data", tmp, args.repeats))
        for row in encoders:
            print(row["encoder"], {d: r["ratio_to_float16"] for d, r in row["dtypes"].items()}, flush=True)
        demo = demo_scores(tmp, args.quick, steps)
    write_result(
        args.out,
        {
            "benchmark": "storage",
            "goal": f"a dtype at <= {GOAL_RATIO}x float16 bytes (mel) with every demo score within {GOAL_SCORE}",
            "quick": args.quick,
            "note": f"--quick: 4 clips per shard, DemoSize(60, 20), {QUICK_STEPS} training steps, not the recipe's 1200"
            if args.quick
            else "full demo recipe",
            "clips_per_shard": clips,
            "repeats": args.repeats,
            "encoders": encoders,
            "demo": demo,
            "verdict": verdict(encoders[0], demo),
            "load_average": {"before": load_before, "after": load_average()},
        },
    )


if __name__ == "__main__":
    main()
