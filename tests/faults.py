"""Helpers for the fault tests: local tasks over hand-made shards, and ways to damage a shard."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

from xares_llm.audio.demo_data import tone
from xares_llm.constants import SAMPLE_RATE
from xares_llm.tasks.schema import TaskConfig

LABELS = ("dog", "rain", "siren")


def local_task(name: str, train: list[str], test: list[str], labels: str = "label") -> TaskConfig:
    """A task over a local mirror (no hub repo), labelled under `labels`."""
    return TaskConfig.model_validate(
        {
            "name": name,
            "track": "A",
            "dataset": {"name": name, "repo": None, "train": train, "test": test},
            "labels": {"train": labels, "test": labels},
            "prompt": "Name the sound.",
            "metric": {"name": "accuracy"},
        }
    )


def task_yaml(directory: Path, task: TaskConfig) -> Path:
    """The task as a YAML file `--tasks` accepts (JSON is YAML)."""
    path = directory / f"{task.name}.yaml"
    path.write_text(json.dumps(task.model_dump()))
    return path


def flac(audio: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, SAMPLE_RATE, format="FLAC")
    return out.getvalue()


def clips(n: int, seed: int = 0, prefix: str = "clip") -> list[tuple[str, dict[str, bytes]]]:
    """`n` labelled samples ``<prefix>_NNN`` with ``flac`` + ``json`` (label under ``label``)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        audio = tone(300.0 * (1 + i % 3), rng.uniform(0.3, 0.6), rng)
        samples.append((f"{prefix}_{i:03d}", {"flac": flac(audio), "json": json.dumps({"label": label}).encode()}))
    return samples


def tar_bytes(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    """A plain tar of ``<key>.<ext>`` members, in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write_shard(path: Path, samples: list[tuple[str, dict[str, bytes]]], compresslevel: int = 9) -> Path:
    """Write `samples` as a shard; gzip-compressed when `path` ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = tar_bytes(samples)
    path.write_bytes(gzip.compress(raw, compresslevel=compresslevel, mtime=0) if path.name.endswith(".gz") else raw)
    return path


def member_offsets(raw: bytes) -> dict[str, tuple[int, int]]:
    """Member name -> (header offset, data offset) in a plain tar."""
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name: (m.offset, m.offset_data) for m in tar.getmembers()}


def part_keys(part: Path) -> list[str]:
    import zarr

    return [str(k) for k in zarr.open_group(part, mode="r")["keys"][:]]
