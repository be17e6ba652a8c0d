"""A feature store at the benchmark's full clip counts, written straight through the part writer.

The count-bound costs (opening a store, the (clip, target) pairs, the sampler, verify, score and
report at full test counts) depend on how many clips, parts and labels there are, not on the audio.
Decoding and encoding 1.14 M clips on two shared cores takes hours; writing their parts directly
takes minutes. Every part is the one `xares extract` would write for that shard (the same path,
writer and metadata); its clips carry the replica's labels (benchmarks/replica.py) and a few frames
each (their count follows the clip's drawn duration times `seconds_scale`).

    python -m benchmarks.full_counts store CACHE --like STORE/encoder.json [--scale 1] [--tasks a,b]
    python -m benchmarks.full_counts widen QUICK_WORK/runs/a1 DIR/a1

`--like` names the encoder.json of a real store (e.g. a `mel` store of the quick rehearsal): its id,
width and frame rate are reused, so stage two reads the written store as that encoder's.

`widen` copies a run with its predictions repeated (new keys) up to each task's full test count, so
`xares score` and `xares report` see full-size inputs (benchmarks/measure_counts.py runs them).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import zlib
from pathlib import Path

import numpy as np

from benchmarks.replica import SHAPES, ShardJob, label_value, shard_jobs
from xares_llm.cache.format import SourceInfo, part_name, split_dir
from xares_llm.cache.writer import PartWriter
from xares_llm.constants import SAMPLE_RATE
from xares_llm.tasks.schema import load_task

ROOT = Path(__file__).resolve().parent.parent


def write_part(cache: Path, info: dict, job: ShardJob) -> None:
    """The part `xares extract` would write for the job's shard, with the replica's labels and durations."""
    rng = np.random.default_rng([zlib.crc32(job.task.encode()), ("train", "test").index(job.split), job.index])
    dataset = load_task(job.task).dataset.name
    directory = split_dir(cache, info["encoder_id"], dataset, job.split)
    writer = PartWriter(directory / part_name(job.path), info["output_dim"], info["dtype"])
    ramp = (np.arange(info["output_dim"], dtype=np.float32) / info["output_dim"])[None, :]  # bytes are not the point
    for i in range(job.clips):
        duration = float(rng.uniform(*job.seconds))
        frames = np.repeat(ramp, max(1, round(duration * job.seconds_scale * info["frame_rate_hz"])), axis=0)
        meta = json.dumps({job.label_key: label_value(job.labels, rng), "duration_s": round(duration, 3)})
        writer.add(f"{job.task}_{job.split}_{job.index:04d}_{i:06d}", frames, meta, int(duration * SAMPLE_RATE))
    writer.close(SourceInfo(job.path, 0, "0" * 64, 0), [])


def widen_run(source: Path, target: Path) -> int:
    """A copy of run `source` whose predictions are repeated up to each task's full test count."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints", "per_sample", "scores.*"))
    pairs = 0
    for path in sorted((target / "predictions").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        full = SHAPES[path.stem].test
        widened = [rows[i % len(rows)] | {"key": f"{rows[i % len(rows)]['key']}-{i}"} for i in range(full)]
        pairs += sum(len(r["references"]) for r in widened)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in widened))
    return pairs


def write_noise(cache: Path, info: dict, megabytes: int, parts: int) -> int:
    """Parts of 30 s clips of random frames (incompressible): a store whose reading is bound by its bytes."""
    rng = np.random.default_rng(0)
    frames_per_clip = int(30 * info["frame_rate_hz"])
    clip_bytes = frames_per_clip * info["output_dim"] * 2
    clips = max(1, megabytes * 2**20 // clip_bytes // parts)
    for index in range(parts):
        path = split_dir(cache, info["encoder_id"], "noise", "train") / f"part-noise-{index:04d}.zarr"
        writer = PartWriter(path, info["output_dim"], info["dtype"])
        for i in range(clips):
            frames = rng.standard_normal((frames_per_clip, info["output_dim"]), dtype=np.float32)
            writer.add(f"noise_{index:04d}_{i:05d}", frames, "{}", 30 * SAMPLE_RATE)
        writer.close(SourceInfo(f"noise-{index:04d}.tar", 0, "0" * 64, 0), [])
    return clips * parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    write = sub.add_parser("store")
    write.add_argument("cache", type=Path)
    write.add_argument("--like", type=Path, required=True, help="encoder.json of a real store")
    write.add_argument("--scale", type=float, default=1.0)
    write.add_argument("--seconds-scale", type=float, default=0.02)
    write.add_argument("--tasks", help="comma list [default: every official task]")
    write.add_argument("--splits", default="train,test")
    noise = sub.add_parser("noise", help="a store of random frames, for reading speed bound by bytes")
    noise.add_argument("cache", type=Path)
    noise.add_argument("--like", type=Path, required=True)
    noise.add_argument("--mb", type=int, default=512)
    noise.add_argument("--parts", type=int, default=8)
    widen = sub.add_parser("widen", help="a run whose predictions are repeated up to the full test counts")
    widen.add_argument("source", type=Path)
    widen.add_argument("target", type=Path)
    args = parser.parse_args()
    if args.what == "noise":
        info = json.loads(args.like.read_text())
        (args.cache / "features" / info["encoder_id"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(args.like, args.cache / "features" / info["encoder_id"] / "encoder.json")
        print(json.dumps({"clips": write_noise(args.cache, info, args.mb, args.parts)}))
        return
    if args.what == "widen":
        shutil.rmtree(args.target, ignore_errors=True)
        print(json.dumps({"pairs": widen_run(args.source, args.target)}))
        return
    info = json.loads(args.like.read_text())
    store = args.cache / "features" / info["encoder_id"]
    store.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.like, store / "encoder.json")
    tasks = args.tasks.split(",") if args.tasks else None
    counts: dict = {}
    start = time.perf_counter()
    for job in shard_jobs(Path(), args.scale, args.seconds_scale, tasks):
        if job.split in args.splits.split(","):
            write_part(args.cache, info, job)
            entry = counts.setdefault(job.task, {}).setdefault(job.split, {"parts": 0, "clips": 0})
            entry["parts"] += 1
            entry["clips"] += job.clips
    seconds = round(time.perf_counter() - start, 1)
    print(json.dumps({"encoder_id": info["encoder_id"], "seconds": seconds, "counts": counts}))


if __name__ == "__main__":
    main()
