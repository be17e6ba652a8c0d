"""The feature-store format `xares-features/1`: names, paths and the typed records stored with it.

::

    <root>/features/<encoder-id>/
      encoder.json                 EncoderInfo
      extract-profile.json         what each extraction run cost (cache/profile.py)
      <dataset>/<split>/part-<shard>.zarr/   one Zarr v3 group per source shard
        frames    [n_frames, D]    float16 | float32 | int8 (see cache/dtypes.py)
        scales    [n_frames]       float32, int8 parts only: frame t = frames[t] * scales[t]
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

from xares_llm.cache.errors import CacheError

FORMAT = "xares-features/1"
ENCODER_FILE = "encoder.json"
PART_SUFFIX = ".zarr"
TMP_MARKER = ".tmp-"  # part-X.zarr.tmp-<host>-<pid>-<uuid>: a part being written
DERIVED_DIR = ".probe"  # <store>/.probe/: pooled embeddings of `xares probe`, rebuilt locally, never transferred
LOCK_SUFFIX = ".lock"  # part-X.zarr.lock: JSON {host, pid, start} of the process extracting it
STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"
STATUS_FAILED = "failed"
ARRAYS = ("frames", "offsets", "keys", "meta", "n_samples")
SCALES = "scales"  # the extra array of an int8 part
# Compute precision of the encoder's forward: fp32 (the reference setting) or fp16/bf16 autocast.
ENCODER_PRECISIONS = ("fp32", "fp16", "bf16")
REFERENCE_PRECISION = "fp32"
# encoder.json written before `encoder_precision` existed: float32 stores were always computed in
# fp32; float16 stores used fp16 autocast when extracted on CUDA and fp32 on CPU, and the device was
# not recorded, so their precision is unknown.
LEGACY_PRECISION = {"float32": "fp32", "float16": "unknown"}
# encoder.json written before `resampler` existed: every store was resampled with soxr HQ.
LEGACY_RESAMPLER = "soxr"


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
    encoder_precision: str  # one of ENCODER_PRECISIONS ("unknown" only for old stores, see LEGACY_PRECISION)
    windowing: dict  # {"max_input_seconds": float | None}
    xares_version: str
    resampler: str = LEGACY_RESAMPLER  # how clips reached 16 kHz: "sinc" (the reference) or "soxr"
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EncoderInfo:
        data = json.loads(text)
        if "encoder_precision" not in data:
            data["encoder_precision"] = LEGACY_PRECISION.get(data.get("dtype"), "unknown")
        data.setdefault("resampler", LEGACY_RESAMPLER)
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
    writer: dict = field(default_factory=dict)  # {host, pid, device}
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


def part_arrays(int8: bool) -> tuple[str, ...]:
    """The arrays a part holds: int8 parts add their per-frame scales."""
    return (*ARRAYS, SCALES) if int8 else ARRAYS


def features_root(root: Path) -> Path:
    return Path(root) / "features"


def check_encoder_id(encoder_id: str) -> None:
    """An encoder-id names one folder: ``../x`` or ``a/b`` would point outside the cache."""
    if not encoder_id or encoder_id.startswith(".") or any(c in encoder_id for c in "/\\\0"):
        raise CacheError(f"encoder-id {encoder_id!r} is not a plain folder name; use one `xares cache ls` prints")


def match_encoder_id(root: Path, text: str) -> str:
    """An encoder-id, or a unique prefix of one of the stores under `root`, -> the full encoder-id."""
    check_encoder_id(text)
    folder = features_root(root)
    ids = (
        sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    )
    if text in ids:
        return text
    matches = [i for i in ids if i.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CacheError(f"encoder-id prefix {text!r} is ambiguous: {', '.join(matches)}")
    return text  # no such store: the caller says so with its own context


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


def member_parts(name: str) -> tuple[str, ...]:
    """The components of a store member's relative name; refuses any name that could leave the store."""
    if "\\" in name or "\0" in name:
        raise CacheError(f"store member {name!r}: a backslash or NUL in the name")
    if name.startswith("/"):
        raise CacheError(f"store member {name!r}: an absolute name")
    parts = tuple(name.split("/"))
    for bad, what in (("", "an empty"), (".", "a '.'"), ("..", "a '..'")):
        if bad in parts:
            raise CacheError(f"store member {name!r}: {what} component")
    return parts
