"""Synthetic WebDataset shards for the offline demo: four small audio tasks a tiny LLM can learn.

Each sample is ``<key>.flac`` + ``<key>.json`` (the sample schema of docs/tasks.md), written deterministically:

- ``demo_pitch``: one harmonic tone, label = its note name (8 classes, accuracy)
- ``demo_count``: 1-5 short beeps, label = the count as a JSON number (accuracy)
- ``demo_events``: a mixture of 1-3 of 5 sound types, label = ``;``-joined names (mAP)
- ``demo_melody``: 3-6 notes, label = the note names as words (iWER)

Layout: ``<data root>/demo/<task>/<split>/<task>_<split>_<index:06d>.tar``, matching
``configs/tasks/demo_*.yaml``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from xares_llm.cache.atomic import atomic_file
from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError

DEMO_TASKS = ("demo_pitch", "demo_count", "demo_events", "demo_melody")
DEMO_SHARDS_PER_SPLIT = 2  # the task YAMLs list exactly this many shards per split
NOTES = {"c": 523.25, "d": 587.33, "e": 659.25, "f": 698.46, "g": 783.99, "a": 880.0, "b": 987.77, "high c": 1046.5}
MELODY_NOTES = {"do": 392.0, "re": 523.25, "mi": 659.25, "fa": 880.0, "sol": 1174.66}
EVENT_TYPES = ("beep", "noise", "chirp", "click", "hum")


@dataclass(frozen=True)
class DemoSize:
    """Clips per shard; two shards per split (tests use a smaller size than `xares demo`)."""

    train_clips_per_shard: int = 300
    test_clips_per_shard: int = 40


def tone(freq: float, seconds: float, rng: np.random.Generator, harmonics: int = 3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = rng.uniform(0, 2 * np.pi)
    wave = sum(np.sin(2 * np.pi * freq * (h + 1) * t + phase) / (h + 1) for h in range(harmonics))
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades avoid clicks
    return (wave * fade).astype(np.float32)


def with_noise(signal: np.ndarray, rng: np.random.Generator, level: float = 0.02) -> np.ndarray:
    gain = rng.uniform(0.3, 0.8) / max(1e-6, float(np.abs(signal).max()))
    return (signal * gain + rng.normal(0, level, signal.shape)).astype(np.float32)


def pitch_sample(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    name = rng.choice(list(NOTES))
    audio = tone(NOTES[name], rng.uniform(0.8, 2.0), rng)
    return with_noise(audio, rng), {"note": name, "frequency_hz": NOTES[name]}


def count_sample(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    count = int(rng.integers(1, 6))
    freq = rng.uniform(700, 1100)
    pieces = [np.zeros(int(rng.uniform(0.05, 0.2) * SAMPLE_RATE), np.float32)]
    for _ in range(count):
        pieces += [tone(freq, 0.12, rng, harmonics=1), np.zeros(int(rng.uniform(0.12, 0.25) * SAMPLE_RATE), np.float32)]
    return with_noise(np.concatenate(pieces), rng), {"count": count}


def event_sound(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if kind == "beep":
        return tone(rng.uniform(1800, 2200), seconds, rng, harmonics=1)
    if kind == "noise":
        return rng.normal(0, 0.4, n).astype(np.float32)
    if kind == "chirp":
        f0, f1 = rng.uniform(300, 500), rng.uniform(3000, 4000)
        return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))).astype(np.float32)
    if kind == "click":
        clicks = np.zeros(n, np.float32)
        clicks[:: int(SAMPLE_RATE / rng.uniform(8, 12))] = 1.0
        return clicks
    return tone(rng.uniform(90, 110), seconds, rng, harmonics=6)  # hum


def events_sample(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    kinds = sorted(rng.choice(EVENT_TYPES, size=int(rng.integers(1, 4)), replace=False), key=EVENT_TYPES.index)
    seconds = rng.uniform(1.0, 2.0)
    sounds = [event_sound(kind, seconds, rng) for kind in kinds]
    mix = sum(s / max(1e-6, float(np.abs(s).max())) for s in sounds)
    return with_noise(mix, rng), {"labels": ";".join(kinds)}


def melody_sample(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    words = list(rng.choice(list(MELODY_NOTES), size=int(rng.integers(3, 7))))
    pieces = [np.concatenate([tone(MELODY_NOTES[w], 0.22, rng, harmonics=2), np.zeros(800, np.float32)]) for w in words]
    return with_noise(np.concatenate(pieces), rng), {"text": " ".join(words)}


GENERATORS: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, dict]]] = {
    "demo_pitch": pitch_sample,
    "demo_count": count_sample,
    "demo_events": events_sample,
    "demo_melody": melody_sample,
}


def shard_relative_path(task: str, split: str, index: int) -> str:
    return f"demo/{task}/{split}/{task}_{split}_{index:06d}.tar"


def write_shard(path: Path, task: str, split: str, index: int, n_clips: int) -> None:
    """Write one deterministic demo shard."""
    rng = np.random.default_rng([DEMO_TASKS.index(task), ("train", "test").index(split), index])
    samples = []
    for i in range(n_clips):
        audio, meta = GENERATORS[task](rng)
        samples.append(
            (f"{task}_{split}_{index:02d}_{i:05d}", audio, meta | {"duration_s": round(len(audio) / SAMPLE_RATE, 3)})
        )
    write_tar(path, samples)


def write_tar(path: Path, samples: list[tuple[str, np.ndarray, dict]]) -> None:
    """WebDataset shard of ``<key>.flac`` + ``<key>.json`` samples, atomically (gzip for ``.tar.gz``).

    Each writer has its own temp, so processes writing the same shard at once do not collide.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f, tarfile.open(fileobj=f, mode="w:gz" if path.name.endswith(".gz") else "w") as tar:
        for key, audio, meta in samples:
            flac = io.BytesIO()
            sf.write(flac, audio, SAMPLE_RATE, format="FLAC")
            for name, data in ((f"{key}.flac", flac.getvalue()), (f"{key}.json", json.dumps(meta).encode())):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))


def write_demo_shards(data_root: Path, size: DemoSize | None = None, overwrite: bool = False) -> list[Path]:
    """Write the four demo tasks' shards under `data_root` (existing shards are kept unless `overwrite`)."""
    size = size or DemoSize()
    written = []
    for task in DEMO_TASKS:
        for split, n_clips in (("train", size.train_clips_per_shard), ("test", size.test_clips_per_shard)):
            for index in range(DEMO_SHARDS_PER_SPLIT):
                path = data_root / shard_relative_path(task, split, index)
                if overwrite or not path.is_file():
                    write_shard(path, task, split, index, n_clips)
                    written.append(path)
    return written


def is_demo(task) -> bool:
    """A demo task: generated here, no hub repo."""
    return task.dataset.repo is None and task.track == "demo"


def missing_demo_shards(data_root: Path) -> int:
    """How many demo shards are not under `data_root` yet (`ensure_demo_shards` would write them)."""
    paths = [
        data_root / shard_relative_path(task, split, index)
        for task in DEMO_TASKS
        for split in ("train", "test")
        for index in range(DEMO_SHARDS_PER_SPLIT)
    ]
    return sum(not path.is_file() for path in paths)


def ensure_demo_shards(tasks: list, data_root: Path) -> None:
    """Write the demo shards under `data_root` when a demo task (no hub repo) is among `tasks`."""
    if any(is_demo(t) for t in tasks):
        try:
            write_demo_shards(data_root)
        except OSError as e:
            raise DataError(f"cannot write the demo shards under {data_root}: {e.strerror or e}; check --data") from e
