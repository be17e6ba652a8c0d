"""Verify a feature store: every byte of every chunk (crc32c), every file present, counts consistent.

Used after copying a cache between machines (`xares cache verify`): a flipped byte fails its
chunk's checksum; a missing file is caught because parts are written with every chunk present; a
missing part is caught against the plan the caller passes (the part names its tasks' shards give),
since the store alone cannot know which parts it should hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xares_llm.cache.chunks import open_part, read_whole
from xares_llm.cache.dtypes import INT8
from xares_llm.cache.errors import StoreFileError
from xares_llm.cache.format import (
    ENCODER_FILE,
    PART_SUFFIX,
    SCALES,
    STATUS_COMPLETE,
    TMP_MARKER,
    encoder_dir,
    part_arrays,
)
from xares_llm.cache.metadata import frames_data_type, read_encoder_file, read_part_attrs, read_part_record
from xares_llm.cache.writer import count_nonfinite

# (dataset, split) -> the part names that folder should hold (see `cache.format.part_name`)
PartPlan = dict[tuple[str, str], list[str]]


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


def parts_to_verify(root: Path, encoder_id: str, plan: PartPlan | None = None) -> list[Path]:
    """The parts on disk and those the plan calls for, in name order."""
    base = encoder_dir(root, encoder_id)
    planned = {base / ds / split / name for (ds, split), names in (plan or {}).items() for name in names}
    return sorted(planned.union(store_parts(root, encoder_id)))


def verify_encoder_file(root: Path, encoder_id: str) -> PartReport:
    """encoder.json: present, of this format, and naming the store's own encoder-id."""
    report = PartReport(encoder_dir(root, encoder_id) / ENCODER_FILE)
    if not report.path.is_file():
        report.problems.append("missing: rerun `xares extract` with the same encoder to write it again")
        return report
    try:
        info = read_encoder_file(report.path)
    except StoreFileError as e:
        report.problems.append(e.problem)
        return report
    if info.encoder_id != encoder_id:
        report.problems.append(f"names encoder-id {info.encoder_id!r}, but its folder is {encoder_id!r}")
    return report


def offsets_problem(offsets: np.ndarray, n_frames: int) -> str | None:
    """Whether `offsets` index `n_frames` frames clip by clip; every reader checks it when it opens a part.

    One pass over n_clips + 1 integers: cheap beside the part's frames, and it is what keeps a
    store whose checksums are valid but whose index was edited from handing out wrong frames.
    """
    if len(offsets) == 0 or offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != n_frames:
        return "offsets are not a 0-based non-decreasing index ending at frames.shape[0]"
    return None


def verify_part(path: Path) -> PartReport:
    report = PartReport(path)
    if not path.exists():
        report.problems.append("missing: the task config lists its shard; rerun `xares extract` to write it")
        return report
    try:
        attrs = read_part_attrs(path)
    except StoreFileError as e:
        report.problems.append(e.problem)
        return report
    if attrs is None:
        record = read_part_record(path)
        if record is not None and record.status != STATUS_COMPLETE:
            report.problems.append(f"{record.status}: {record.reason}; `xares extract` says more")
        else:
            report.problems.append("not complete (no status 'complete'): an interrupted write; rerun `xares extract`")
        return report
    group = open_part(path)
    arrays = {}
    int8 = frames_data_type(path) == INT8
    for name in part_arrays(int8):
        try:
            arrays[name] = read_whole(path, group, name)
        except StoreFileError as e:  # a missing chunk file, a crc32c mismatch or an undecodable chunk
            report.problems.append(e.problem)
    if report.problems:
        return report
    offsets, frames = arrays["offsets"], arrays["frames"]
    report.n_clips, report.n_frames = len(arrays["keys"]), len(frames)
    if offsets_problem(offsets, len(frames)):
        report.problems.append(offsets_problem(offsets, len(frames)))
    lengths = {len(arrays[n]) for n in ("keys", "meta", "n_samples")} | {len(offsets) - 1, attrs.n_clips}
    if len(lengths) != 1:
        report.problems.append(f"clip counts disagree across arrays and attrs: {sorted(lengths)}")
    if attrs.n_frames != len(frames):
        report.problems.append(f"attrs say {attrs.n_frames} frames, the array holds {len(frames)}")
    if int8 and len(arrays[SCALES]) != len(frames):
        report.problems.append(f"{len(arrays[SCALES])} scales for {len(frames)} int8 frames")
    nonfinite = count_nonfinite(frames, arrays[SCALES] if int8 else None)
    if nonfinite:
        report.problems.append(f"{nonfinite} frames hold NaN or Inf (the encoder produced them)")
    return report


def verify_store(root: Path, encoder_id: str, plan: PartPlan | None = None) -> Iterator[PartReport]:
    """Verify every part of one encoder's store and every part the plan calls for, yielding as it goes
    (for a progress bar). encoder.json is checked apart, by `verify_encoder_file`."""
    for path in parts_to_verify(root, encoder_id, plan):
        yield verify_part(path)
