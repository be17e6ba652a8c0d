"""One work unit's audio: fetch the shard if needed, read it with integrity checks, decode every clip.

A shard is decoded in windows of consecutive clips, bounded by clip count and audio seconds, so a
9-hour shard never sits in memory whole (`xares_llm.extract.decode_pipe` moves the windows to the encoder).
Runs in a background thread or a decode worker process, so it imports nothing of torch: a spawned
worker starts in a fraction of the time.

Every clip that is not kept is counted with one of the `DropReason` values, so a part records why
each of its source's samples is missing. A sample with no label under the unit's task keys
(`xares_llm.tasks.schema.targets`, fallbacks included) is dropped: it can never be trained on or scored. A
shard is shared by the tasks of one dataset; the label check uses the unit's task.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from xares_llm.audio.decoding import AUDIO_EXTENSIONS, REFERENCE_RESAMPLER, SKIPPED_EXTENSIONS, decode_audio
from xares_llm.audio.sample_json import SampleJsonError, parse_sample_json
from xares_llm.audio.shards import Sample, ShardDamage, read_samples
from xares_llm.audio.sources import shard_path
from xares_llm.cache.format import SourceInfo
from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError
from xares_llm.tasks.schema import Split, TaskConfig, targets


class DropReason(StrEnum):
    NO_AUDIO = "no audio"
    NO_JSON = "no json"
    BAD_JSON = "bad json"
    NO_LABEL = "no label"
    MALFORMED = "malformed sample"
    UNDECODABLE = "undecodable"
    EMPTY = "empty audio"
    DAMAGED = "damaged shard"
    NONFINITE = "nonfinite"
    ENCODER = "encoder failure"


def dropped(key: str, reason: DropReason, detail: str = "", meta: str | None = None) -> dict:
    """One entry of a part's ``dropped`` attrs; a clip with a readable json keeps it, so evaluation can
    score the clip as an empty prediction instead of leaving it out."""
    entry = {"key": key, "reason": str(reason), **({"detail": detail} if detail else {})}
    return entry | ({"meta": meta} if meta is not None else {})


@dataclass
class WorkUnit:
    task: TaskConfig  # the first task that reads this shard (it knows the hub repo)
    split: Split
    shard: str  # repo-relative shard path
    data_root: Path
    part_path: Path
    resampler: str = REFERENCE_RESAMPLER  # the store's (encoder.json `resampler`)

    @property
    def local_path(self) -> Path:
        return self.data_root / self.shard

    @property
    def label(self) -> str:
        return f"{self.task.dataset.name}/{self.split}/{Path(self.shard).name}"


DEFAULT_WINDOW_SECONDS = 600.0  # audio decoded ahead of the encoder per window: about 38 MB of float32
DEFAULT_WINDOW_CLIPS = 2048  # and at most this many clips, whatever their length


@dataclass
class DecodedWindow:
    """Consecutive clips of one shard, in source order; the shard's last window has ``last`` set."""

    source: SourceInfo
    keys: list[str] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)  # samples of this window that could not be decoded
    damage: str = ""  # why the source shard is damaged (last window only); empty when it read cleanly
    corrupt: bool = False  # the damage may lie anywhere: every clip of the shard, earlier windows too, is suspect
    last: bool = False
    samples: int = 0  # audio samples held, over all clips
    decode_s: float = 0.0  # seconds the decoder spent on this window (set by `xares_llm.extract.decode_pipe`)


def source_info(unit: WorkUnit, previous: SourceInfo | None = None) -> SourceInfo:
    """Describe the shard file; re-hash only when size or mtime differ from `previous`."""
    stat = unit.local_path.stat()
    if previous and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns:
        return previous
    with unit.local_path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return SourceInfo(name=unit.shard, size=stat.st_size, sha256=sha, mtime_ns=stat.st_mtime_ns)


def decode_windows(
    unit: WorkUnit, max_seconds: float = DEFAULT_WINDOW_SECONDS, max_clips: int = DEFAULT_WINDOW_CLIPS
) -> Iterator[DecodedWindow]:
    """Fetch the shard if needed, then read and decode it, one window of clips at a time.

    A window closes once it holds `max_clips` clips or `max_seconds` of audio. Bad samples are
    dropped with their reason; a damaged shard keeps what it can (see `xares_llm.audio.shards`) and says
    why in the last window's ``damage``. Neither is fatal. When the damage may lie anywhere
    (``corrupt``), the clips of earlier windows are already on their way: the caller drops them all.
    """
    shard_path(unit.task, unit.shard, unit.data_root, quiet=True)
    source = source_info(unit)
    label_keys = unit.task.labels.keys(unit.split)
    max_samples = max_seconds * SAMPLE_RATE
    window = DecodedWindow(source)
    try:
        for sample in read_samples(unit.local_path):
            add_sample(window, sample, label_keys, unit.resampler)
            if len(window.keys) >= max_clips or window.samples >= max_samples:
                yield window
                window = DecodedWindow(source)
    except ShardDamage as damage:
        window.damage, window.corrupt = damage.reason, not damage.trusted
        if damage.cut_sample is not None:
            window.dropped.append(dropped(damage.cut_sample, DropReason.DAMAGED, "cut by the damage"))
    except OSError as e:
        raise DataError(f"cannot read shard {unit.local_path}: {e.strerror or e}") from e
    window.last = True
    yield window


def add_sample(
    decoded: DecodedWindow, sample: Sample, label_keys: list[str], resampler: str = REFERENCE_RESAMPLER
) -> None:
    """Decode one sample into `decoded`, or record why it is dropped."""
    key, files = sample.key, sample.files
    if sample.problem:
        decoded.dropped.append(dropped(key, DropReason.MALFORMED, sample.problem))
        return
    ext = next((e for e in AUDIO_EXTENSIONS if e in files), None)
    if ext is None:
        skipped = [SKIPPED_EXTENSIONS[e] for e in SKIPPED_EXTENSIONS if e in files]
        detail = skipped[0] if skipped else f"found {', '.join(sorted(files)) or 'nothing'}"
        decoded.dropped.append(dropped(key, DropReason.NO_AUDIO, detail))
        return
    if "json" not in files:
        decoded.dropped.append(dropped(key, DropReason.NO_JSON))
        return
    try:
        meta = parse_sample_json(files["json"])
    except SampleJsonError as e:
        decoded.dropped.append(dropped(key, DropReason.BAD_JSON, str(e)))
        return
    meta_text = files["json"].decode("utf-8")
    if not targets(meta, label_keys).texts:
        decoded.dropped.append(dropped(key, DropReason.NO_LABEL, f"none of {', '.join(label_keys)} or the fallbacks"))
        return
    try:
        audio = decode_audio(files[ext], f"{key}.{ext}", resampler)
    except DataError as e:
        decoded.dropped.append(dropped(key, DropReason.UNDECODABLE, str(e), meta_text))
        return
    if audio.size == 0:
        decoded.dropped.append(dropped(key, DropReason.EMPTY, meta=meta_text))
        return
    decoded.keys.append(key)
    decoded.audio.append(audio)
    decoded.meta.append(meta_text)
    decoded.samples += len(audio)
