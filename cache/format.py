"""The feature-store format `xares-features/1`: names, paths and the typed records stored with it.

::

    <root>/features/<encoder-id>/
      encoder.json                 EncoderInfo
      <dataset>/<split>/part-<shard>.zarr/   one Zarr v3 group per source shard
        frames    [n_frames, D]    float16 | float32
        offsets   [n_clips + 1]    int64; clip i = frames[offsets[i]:offsets[i+1]]
        keys      [n_clips]        str, the source sample key
        meta      [n_clips]        str, the sample's JSON exactly as read
        n_samples [n_clips]        int64, audio length at 16 kHz
        attrs: PartAttrs
      <dataset>/<split>/part-<shard>.zarr.lock   the claim of the process extracting that part

A part's ``status``: ``complete`` (readers show it), ``partial`` (the source shard is damaged: the
clips before the damage are stored and ``reason`` says what is wrong; kept until the shard changes),
``failed`` (too many clips dropped; ``reason`` says how many; extracted again on every run). Only
complete parts are visible to readers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "xares-features/1"
ENCODER_FILE = "encoder.json"
PART_SUFFIX = ".zarr"
TMP_MARKER = ".tmp-"  # part-X.zarr.tmp-<host>-<pid>-<uuid>: a part being written
LOCK_SUFFIX = ".lock"  # part-X.zarr.lock: JSON {host, pid, start} of the process extracting it
STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"
STATUS_FAILED = "failed"
ARRAYS = ("frames", "offsets", "keys", "meta", "n_samples")
STORE_DTYPES = ("float16", "float32")


@dataclass
class EncoderInfo:
    """encoder.json: what produced every part under one encoder-id."""

    encoder_id: str
    spec: str
    qualname: str
    kwargs: dict
    fingerprint: str  # full sha256 hex; encoder_id ends with its first 12 characters
    output_dim: int
    frame_rate_hz: float
    sample_rate: int
    dtype: str
    windowing: dict  # {"max_input_seconds": float | None}
    xares_version: str
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EncoderInfo:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class SourceInfo:
    """The source shard a part was made from; a rerun re-extracts when it changed."""

    name: str  # repo-relative path of the shard
    size: int  # bytes
    sha256: str
    mtime_ns: int  # lets a rerun skip re-hashing an untouched file


@dataclass
class PartAttrs:
    """Attributes of one part group; `status` is set last, just before the atomic rename."""

    source: SourceInfo
    n_clips: int
    n_frames: int
    dropped: list[dict] = field(default_factory=list)  # [{key, reason, detail?}] clips that could not be used
    nonfinite: int = 0  # frames holding NaN or Inf (kept, counted so `verify` can flag them)
    created: str = ""
    writer: dict = field(default_factory=dict)  # {host, pid}
    status: str = STATUS_COMPLETE
    reason: str = ""  # why a part is partial or failed
    format: str = FORMAT

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PartAttrs:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["source"] = SourceInfo(**values["source"])
        return cls(**values)


def features_root(root: Path) -> Path:
    return Path(root) / "features"


def encoder_dir(root: Path, encoder_id: str) -> Path:
    return features_root(root) / encoder_id


def split_dir(root: Path, encoder_id: str, dataset: str, split: str) -> Path:
    return encoder_dir(root, encoder_id) / dataset / split


def part_name(shard: str) -> str:
    """``ESC-50/train/esc50_fold_1_0000000.tar.gz`` -> ``part-ESC-50--train--esc50_fold_1_0000000.zarr``.

    The whole repo-relative path is kept (``/`` -> ``--``) because some datasets (MECAT) reuse
    file names across folders.
    """
    stem = shard.removesuffix(".gz").removesuffix(".tar")
    return f"part-{stem.replace('/', '--')}{PART_SUFFIX}"
