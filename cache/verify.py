"""Verify a feature store: every byte of every chunk (crc32c), every file present, counts consistent.

Used after copying a cache between machines (`xares cache verify`): a flipped byte fails its
chunk's checksum; a missing file is caught because parts are written with every chunk present.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from xares_llm.cache.format import ARRAYS, PART_SUFFIX, TMP_MARKER, encoder_dir
from xares_llm.cache.reader import read_part_attrs


@dataclass
class PartReport:
    path: Path
    problems: list[str] = field(default_factory=list)
    n_clips: int = 0
    n_frames: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def store_parts(root: Path, encoder_id: str) -> list[Path]:
    """Every part directory (complete or not) under one encoder's store, in name order."""
    base = encoder_dir(root, encoder_id)
    found = [p for p in base.glob(f"*/*/*{PART_SUFFIX}") if p.is_dir() and TMP_MARKER not in p.name]
    return sorted(found)


def missing_chunk_files(array: zarr.Array, directory: Path) -> list[str]:
    """Chunk (or shard) files the array's shape calls for that are not on disk."""
    grid = array.shards or array.chunks
    counts = [max(1, math.ceil(size / step)) if size else 0 for size, step in zip(array.shape, grid, strict=True)]
    missing = []
    for index in np.ndindex(*counts):
        relative = Path("c", *(str(i) for i in index))
        if not (directory / relative).is_file():
            missing.append(str(relative))
    return missing


def verify_part(path: Path) -> PartReport:
    report = PartReport(path)
    attrs = read_part_attrs(path)
    if attrs is None:
        report.problems.append("not complete (no status 'complete'): an interrupted write; rerun `xares extract`")
        return report
    group = zarr.open_group(path, mode="r")
    arrays = {}
    for name in ARRAYS:
        if name not in group:
            report.problems.append(f"array {name!r} is missing")
            continue
        missing = missing_chunk_files(group[name], path / name)
        if missing:
            report.problems.append(f"{name}: {len(missing)} chunk files missing ({', '.join(missing[:3])})")
            continue
        try:
            arrays[name] = group[name][:]
        except ValueError as e:  # crc32c mismatch or an undecodable chunk
            report.problems.append(f"{name}: {e}")
    if report.problems:
        return report
    offsets, frames = arrays["offsets"], arrays["frames"]
    report.n_clips, report.n_frames = len(arrays["keys"]), len(frames)
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != len(frames):
        report.problems.append("offsets are not a 0-based non-decreasing index ending at frames.shape[0]")
    lengths = {len(arrays[n]) for n in ("keys", "meta", "n_samples")} | {len(offsets) - 1, attrs.n_clips}
    if len(lengths) != 1:
        report.problems.append(f"clip counts disagree across arrays and attrs: {sorted(lengths)}")
    if attrs.n_frames != len(frames):
        report.problems.append(f"attrs say {attrs.n_frames} frames, the array holds {len(frames)}")
    nonfinite = int((~np.isfinite(frames)).any(axis=1).sum()) if len(frames) else 0
    if nonfinite:
        report.problems.append(f"{nonfinite} frames hold NaN or Inf (the encoder produced them)")
    return report


def verify_store(root: Path, encoder_id: str) -> Iterator[PartReport]:
    """Verify every part of one encoder's store, yielding as it goes (for a progress bar)."""
    for path in store_parts(root, encoder_id):
        yield verify_part(path)
