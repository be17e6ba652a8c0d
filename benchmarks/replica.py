"""A synthetic replica of the official benchmark's shape: real shard files, counts and label sets.

Every official task gets its real shard list (from its task config, in the hub layout under one
data root), its train and test clip counts times `scale`, labels of the real set sizes under the
task's own label key, and clip durations drawn from the task's real range; the audio written is a
tone `seconds_scale` times that long, so a rehearsal on a small machine keeps every count while its
audio shrinks. Counts and durations are from the public descriptions of each dataset (about +-30 %).
"""

from __future__ import annotations

import argparse
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from benchmarks.full_scale import Manifest
from xares_llm.audio.demo_data import tone, write_tar
from xares_llm.constants import SAMPLE_RATE
from xares_llm.tasks.schema import TaskConfig, load_mixture

MIN_AUDIO_SECONDS = 0.1  # shortest audio written: every encoder yields at least a few frames
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
WORDS = [a + b for a in SYLLABLES for b in SYLLABLES][:2000]  # caption and transcript vocabulary
CJK_FIRST, CJK_COUNT = 0x4E00, 3500  # the common CJK ideographs AISHELL-1 transcripts draw from


@dataclass(frozen=True)
class TaskShape:
    """One task's size: clips per split, clip seconds (min, max) per split, and its label kind."""

    train: int
    test: int
    seconds: tuple[float, float]
    labels: str  # "class:N", "multi:N", "pair", "zh", "en", "captions:K" (K per clip) or "captions:1-3"
    test_seconds: tuple[float, float] | None = None


SHAPES = {
    "asvspoof2015": TaskShape(16_400, 193_400, (2.0, 5.0), "class:2"),
    "cremad": TaskShape(5_950, 1_490, (1.5, 3.5), "class:6"),
    "esc50": TaskShape(1_600, 400, (5.0, 5.0), "class:50"),
    "fluentspeechcommands": TaskShape(23_100, 3_800, (1.5, 3.0), "class:248"),
    "freemusicarchive": TaskShape(7_100, 900, (30.0, 30.0), "class:8"),
    "fsd50k": TaskShape(41_000, 10_200, (0.3, 30.0), "multi:200"),
    "fsdkaggle2018": TaskShape(9_500, 1_600, (0.3, 30.0), "multi:41"),
    "gtzan": TaskShape(900, 100, (30.0, 30.0), "class:10"),
    "libricount": TaskShape(4_600, 1_150, (5.0, 5.0), "class:11"),
    "nsynth": TaskShape(289_000, 4_100, (4.0, 4.0), "class:11"),
    "speechcommandsv1": TaskShape(51_100, 6_800, (1.0, 1.0), "class:30"),
    "urbansound8k": TaskShape(7_900, 870, (0.5, 4.0), "class:10"),
    "vocalsound": TaskShape(15_600, 3_600, (2.0, 6.0), "class:6"),
    "voxceleb1": TaskShape(148_600, 37_700, (4.0, 12.0), "pair", test_seconds=(10.0, 22.0)),
    "voxlingua33": TaskShape(59_000, 1_600, (6.0, 14.0), "class:33"),
    "aishell1": TaskShape(120_000, 7_200, (2.0, 7.0), "zh"),
    "clotho": TaskShape(3_800, 1_050, (15.0, 30.0), "captions:5"),
    "librispeech": TaskShape(28_500, 2_600, (4.0, 35.0), "en"),
    "songdescriber": TaskShape(350, 350, (100.0, 140.0), "captions:1-3"),
    "mecat": TaskShape(20_000, 6_500, (8.0, 12.0), "captions:3"),
}


@dataclass(frozen=True)
class ShardJob:
    path: str
    task: str
    split: str
    index: int
    clips: int
    label_key: str
    labels: str
    seconds: tuple[float, float]
    seconds_scale: float


def official_tasks() -> list[TaskConfig]:
    """Every task of Track A and Track B, in the `all` mixture's order."""
    mixture = load_mixture("all")
    return [mixture.tasks[name] for name in mixture.evaluate]


def split_counts(total: int, shards: int) -> list[int]:
    """`total` clips over `shards` shards as evenly as possible, at least one clip a shard."""
    total = max(total, shards)
    base, extra = divmod(total, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


def shard_jobs(data_root: Path, scale: float, seconds_scale: float, tasks: list[str] | None = None) -> list[ShardJob]:
    jobs = []
    for task in official_tasks():
        if tasks is not None and task.name not in tasks:
            continue
        shape = SHAPES[task.name]
        for split in ("train", "test"):
            shards = task.dataset.shards(split)
            seconds = shape.test_seconds if split == "test" and shape.test_seconds else shape.seconds
            counts = split_counts(round(getattr(shape, split) * scale), len(shards))
            key = task.labels.keys(split)[0]
            for index, (relative, clips) in enumerate(zip(shards, counts, strict=True)):
                job = ShardJob(
                    str(data_root / relative), task.name, split, index, clips, key, shape.labels, seconds, seconds_scale
                )
                jobs.append(job)
    return jobs


@cache
def class_names(n: int) -> list[str]:
    return [f"{WORDS[(7 * i) % len(WORDS)]} {WORDS[(13 * i + 5) % len(WORDS)]}" for i in range(n)]


def sentence(rng: np.random.Generator, low: int, high: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(low, high + 1)))


def label_value(kind: str, rng: np.random.Generator) -> str | list[str]:
    """One clip's label in the shape the task's shards carry it (docs/tasks.md)."""
    name, _, arg = kind.partition(":")
    if name == "class":
        return class_names(int(arg))[rng.integers(int(arg))]
    if name == "multi":
        picked = rng.choice(int(arg), size=rng.integers(1, 4), replace=False)
        return ";".join(class_names(int(arg))[i] for i in sorted(picked))
    if name == "pair":
        return ["same", "different"][rng.integers(2)]
    if name == "zh":
        return "".join(chr(CJK_FIRST + c) for c in rng.integers(0, CJK_COUNT, rng.integers(8, 20)))
    if name == "en":
        return sentence(rng, 8, 30)
    low, _, high = arg.partition("-")
    return [sentence(rng, 8, 20) for _ in range(rng.integers(int(low), int(high or low) + 1))]


def write_job(job: ShardJob) -> int:
    """Write one shard; returns how many (clip, target) pairs it holds."""
    rng = np.random.default_rng([zlib.crc32(job.task.encode()), ("train", "test").index(job.split), job.index])
    samples, targets = [], 0
    for i in range(job.clips):
        duration = float(rng.uniform(*job.seconds))
        audio = tone(float(rng.uniform(200, 2000)), max(MIN_AUDIO_SECONDS, duration * job.seconds_scale), rng)
        label = label_value(job.labels, rng)
        targets += len(label) if isinstance(label, list) else 1
        meta = {job.label_key: label, "duration_s": round(len(audio) / SAMPLE_RATE, 3)}
        samples.append((f"{job.task}_{job.split}_{job.index:04d}_{i:06d}", audio, meta))
    write_tar(Path(job.path), samples)
    return targets


def build_replica(
    data_root: Path,
    scale: float = 1.0,
    seconds_scale: float = 1.0,
    workers: int = 1,
    tasks: list[str] | None = None,
) -> Manifest:
    """Write every official task's shards under `data_root` (hub layout) and `replica.json` beside them."""
    jobs = shard_jobs(Path(data_root), scale, seconds_scale, tasks)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            targets = list(pool.map(write_job, jobs, chunksize=4))
    else:
        targets = [write_job(job) for job in jobs]
    counts: dict = {}
    for job, n_targets in zip(jobs, targets, strict=True):
        entry = counts.setdefault(job.task, {}).setdefault(job.split, {"shards": 0, "clips": 0, "targets": 0})
        entry["shards"] += 1
        entry["clips"] += job.clips
        entry["targets"] += n_targets
    manifest = Manifest(scale, seconds_scale, counts)
    manifest.save(Path(data_root) / "replica.json")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seconds-scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    manifest = build_replica(args.data_root, args.scale, args.seconds_scale, args.workers)
    print(f"{manifest.total('shards')} shards, {manifest.total('clips')} clips, {manifest.total('targets')} targets")


if __name__ == "__main__":
    main()
