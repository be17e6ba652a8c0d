"""Stage one: run the frozen encoder once over every clip and write feature-store parts.

Work unit = one source shard -> one part. A shard streams through in windows of consecutive clips
(at most `window_seconds` of audio, `window_clips` clips): read the tar with integrity checks
(`xares_llm.shards`), decode each clip to mono 16 kHz (`xares_llm.decode`), sort the window by
length, batch by padded seconds, encode, trim to valid frames, append to the part's temp
(`xares_llm.cache.writer.PartWriter`), next window; the part is renamed into place atomically at
the end. Clips are stored in source order whatever order they were encoded in. Decoding runs ahead
in a background thread (or `decode_workers` processes, which die with this one) and appending in
another, so the encoder rarely waits, and memory is bounded by a few windows, not by the shard.

Every clip not stored is counted in the part's ``dropped`` attrs with its reason. A part's status:

- ``complete``: visible to readers. A rerun skips it while its source shard is unchanged.
- ``partial``: the source shard is damaged (cut short, a broken header, a bad gzip checksum); the
  clips read before the damage are stored, or none when the damage may lie anywhere (a gzip
  checksum). Re-reading the same bytes gives the same result, so a rerun skips it while the shard
  is unchanged, and redoes it once the shard changes or is removed (a re-download). Readers show
  only complete parts, so training and evaluation never run on a shard that silently lost clips.
- ``failed``: more than `max_dropped` of its clips (or all of them) were dropped; redone on every
  run, so a fix (or a larger --max-dropped) takes effect.

Partial and failed parts are listed in `ExtractReport.not_complete`, on every run while they last.
Only RuntimeError (out-of-memory included) from the encoder is retried clip by clip and costs only
the failing clip; any other exception stops the run as an `EncoderError` naming the encoder's file
and line.
"""

from __future__ import annotations

import contextlib
import math
import platform
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from xares_llm.bench import PeakMemory, extraction_profile
from xares_llm.cache import (
    EncoderInfo,
    PartAttrs,
    PartBuffer,
    PartLock,
    SourceInfo,
    part_name,
    read_encoder_info,
    read_part_record,
    remove_part_temps,
    remove_stale_locks,
    remove_stale_temps,
    split_dir,
)
from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cache.dtypes import held_dtype
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import (
    ENCODER_FILE,
    REFERENCE_PRECISION,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_PARTIAL,
    encoder_dir,
)
from xares_llm.cache.profile import PROFILE_FILE, append_profile
from xares_llm.cache.writer import PartWriter, write_failure
from xares_llm.constants import DEFAULT_BATCH_SECONDS, SAMPLE_RATE
from xares_llm.decode import (
    DEFAULT_WINDOW_CLIPS,
    DEFAULT_WINDOW_SECONDS,
    DecodedWindow,
    DropReason,
    WorkUnit,
    dropped,
    source_info,
)
from xares_llm.decode_pipe import DecodePipe, WindowLimits
from xares_llm.demo_data import write_demo_shards
from xares_llm.devices import resolve_device
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import AUTOCAST_DTYPES, encode_clips, padded_input_samples
from xares_llm.encoders.loader import raised_at
from xares_llm.errors import DataError, EncoderError, StoreError
from xares_llm.plan import check_room, estimate
from xares_llm.tasks import SPLITS, Split, TaskConfig
from xares_llm.threads import use_threads

# Splits to extract: the same for every task, or per task name (training tasks need train, evaluated ones test).
SplitChoice = list[Split] | dict[str, list[Split]]
DEFAULT_MAX_DROPPED = 0.01  # a part dropping more than this fraction of its clips is not complete


class ExtractProgress(Protocol):
    """What extraction reports while it runs (the CLI renders it with Rich)."""

    def start(self, total_units: int) -> None: ...
    def advance(self, clips: int, audio_seconds: float) -> None: ...
    def unit_done(self, label: str, skipped: bool) -> None: ...


@dataclass
class PartProblem:
    """A part left partial or failed, and why."""

    label: str  # <dataset>/<split>/<shard file>
    path: Path
    status: str
    reason: str


def not_complete_error(problems: list[PartProblem]) -> DataError:
    """One error listing the parts that are not complete (their tasks cannot be trained or scored)."""
    listed = "; ".join(f"{p.label} {p.status}: {p.reason}" for p in problems)
    n = len(problems)
    return DataError(f"{n} part{' is' if n == 1 else 's are'} not complete: {listed}")


@dataclass
class ExtractReport:
    encoder_id: str
    store: Path
    written: list[Path] = field(default_factory=list)
    up_to_date: int = 0
    elsewhere: int = 0  # parts another live process was extracting (their lock was held)
    clips: int = 0
    not_complete: list[PartProblem] = field(default_factory=list)  # partial or failed parts, this run or earlier
    dropped: list[dict] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0


@contextlib.contextmanager
def store_errors(path: Path) -> Iterator[None]:
    """An OS error while writing the store, or a cache error, as a one-line `StoreError`."""
    try:
        yield
    except StoreError:
        raise
    except CacheError as e:
        raise StoreError(str(e)) from e
    except OSError as e:
        raise StoreError(write_failure(path, e)) from e


def write_encoder_info(cache_root: Path, info: EncoderInfo) -> None:
    """Create encoder.json, or confirm the existing one was made by this very encoder."""
    existing = read_encoder_info(cache_root, info.encoder_id)
    if existing is not None:
        if existing.fingerprint != info.fingerprint:
            raise StoreError(
                f"{encoder_dir(cache_root, info.encoder_id)} belongs to another encoder (fingerprint "
                f"{existing.fingerprint[:16]}… vs {info.fingerprint[:16]}…); remove it or use another --cache"
            )
        return
    path = encoder_dir(cache_root, info.encoder_id) / ENCODER_FILE
    with store_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, info.to_json())


def plan_units(
    tasks: list[TaskConfig], splits: SplitChoice, cache_root: Path, data_root: Path, encoder_id: str
) -> list[WorkUnit]:
    """One unit per distinct (dataset, split, shard); demo shards are written when missing.

    Nothing is downloaded here: a missing shard is fetched by the decode worker, so downloads
    overlap with encoding, and a complete part whose audio is absent (a shared cache) needs none.
    """
    if any(t.dataset.repo is None and t.track == "demo" for t in tasks):
        try:
            write_demo_shards(data_root)
        except OSError as e:
            raise DataError(f"cannot write the demo shards under {data_root}: {e.strerror or e}; check --data") from e
    units: dict[tuple[str, str, str], WorkUnit] = {}
    for task in tasks:
        for split in splits.get(task.name, []) if isinstance(splits, dict) else splits:
            directory = split_dir(cache_root, encoder_id, task.dataset.name, split)
            for shard in task.dataset.shards(split):
                units.setdefault(
                    (task.dataset.name, split, shard),
                    WorkUnit(task, split, shard, data_root, directory / part_name(shard)),
                )
    return list(units.values())


def up_to_date_record(unit: WorkUnit) -> PartAttrs | None:
    """The part's record when nothing is left to do for it (complete or partial, same source); else None.

    A partial part whose shard is gone is redone: the shard is fetched again, as a re-download.
    """
    record = read_part_record(unit.part_path)
    if record is None or record.status not in (STATUS_COMPLETE, STATUS_PARTIAL):
        return None
    if not unit.local_path.is_file():
        return record if record.status == STATUS_COMPLETE else None  # complete, and no audio here to compare
    current, known = source_info(unit, record.source), record.source
    same = (current.name, current.size, current.sha256) == (known.name, known.size, known.sha256)
    return record if same else None


def is_up_to_date(unit: WorkUnit) -> bool:
    return up_to_date_record(unit) is not None


def note_up_to_date(unit: WorkUnit, record: PartAttrs, report: ExtractReport) -> None:
    report.up_to_date += 1
    if record.status != STATUS_COMPLETE:
        report.not_complete.append(PartProblem(unit.label, unit.part_path, record.status, record.reason))


def length_batches(lengths: list[int], batch_seconds: float, padded_samples: int | None = None) -> Iterator[list[int]]:
    """Indices sorted by length (longest first), grouped so that each batch's padded input fits `batch_seconds`.

    Batches pad to their longest clip: batch size x longest <= batch_seconds. An encoder that pads
    every window to its maximum input (`padded_samples`, Whisper's 30 s) costs that much per window
    whatever the clip's length, so there a batch's windows x `padded_samples` fit instead. A batch
    always holds at least one clip.
    """
    budget = batch_seconds * SAMPLE_RATE
    batch: list[int] = []
    cost = 0
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        step = max(1, math.ceil(lengths[index] / padded_samples)) * padded_samples if padded_samples else 0
        grown = cost + step if padded_samples else (len(batch) + 1) * lengths[batch[0] if batch else index]
        if batch and grown > budget:
            yield batch
            batch, grown = [], step or lengths[index]
        batch.append(index)
        cost = grown
    if batch:
        yield batch


class Extractor:
    """Encodes decoded windows into part buffers with one loaded encoder."""

    def __init__(self, module: torch.nn.Module, info: EncoderInfo, device: str, batch_seconds: float):
        self.module, self.info, self.device, self.batch_seconds = module, info, device, batch_seconds
        # fp32 unless encoder.json says otherwise: autocast is an explicit choice, never implied by the store dtype
        self.autocast_dtype = AUTOCAST_DTYPES[info.encoder_precision]
        self.padded_samples = padded_input_samples(module, info.spec)
        self.encode_s = 0.0  # seconds spent encoding, over every window

    def encode(
        self, window: DecodedWindow, progress: ExtractProgress | None, keep_nonfinite: bool = False
    ) -> PartBuffer:
        """Encode every clip of `window`, kept clips in source order; a clip whose features hold NaN/Inf
        (in the stored dtype) is dropped as ``nonfinite`` unless `keep_nonfinite`. The buffer's
        ``dropped`` lists only what the encoder lost (the window's own ``dropped`` stay there)."""
        started = time.perf_counter()
        buffer = PartBuffer(dim=self.info.output_dim, dtype=self.info.dtype, device=self.device)
        features: dict[int, np.ndarray] = {}
        failed: dict[int, tuple[DropReason, str]] = {}
        lengths = [len(a) for a in window.audio]
        for batch in length_batches(lengths, self.batch_seconds, self.padded_samples):
            for index, result in zip(batch, self._encode_batch([window.audio[i] for i in batch]), strict=True):
                if isinstance(result, str):
                    failed[index] = (DropReason.ENCODER, result)
                    continue
                stored = self._stored(result, window.keys[index])
                bad = int((~np.isfinite(stored)).any(axis=1).sum()) if stored.size else 0
                if bad and not keep_nonfinite:
                    where = "" if np.isfinite(result).all() else " (as computed)"
                    failed[index] = (DropReason.NONFINITE, f"{bad} of {len(stored)} frames hold NaN or Inf{where}")
                else:
                    features[index] = stored
            if progress:
                progress.advance(len(batch), sum(lengths[i] for i in batch) / SAMPLE_RATE)
        for index, key in enumerate(window.keys):  # source order, whatever order we encoded in
            if index in failed:
                buffer.dropped.append(dropped(key, *failed[index], meta=window.meta[index]))
            else:
                buffer.add(key, features[index], window.meta[index], lengths[index])
        self.encode_s += time.perf_counter() - started
        return buffer

    def _stored(self, frames: np.ndarray, key: str) -> np.ndarray:
        """The frames as the part writer takes them (held_dtype); a wrong shape breaks the encoder contract."""
        if frames.ndim != 2 or frames.shape[1] != self.info.output_dim:
            raise EncoderError(
                f"encoder {self.info.spec!r} returned frames of shape {tuple(frames.shape)} for clip {key}; "
                f"its output_dim is {self.info.output_dim}, so (T', {self.info.output_dim}) was expected"
            )
        with np.errstate(over="ignore"):  # a value beyond float16 becomes inf, which encode() counts
            return frames.astype(held_dtype(self.info.dtype), copy=False)

    def _encode_batch(self, clips: list[np.ndarray]) -> list[np.ndarray | str]:
        """Encode a batch; on a RuntimeError (out-of-memory included), retry clip by clip so one bad
        clip costs only itself. Any other exception is a bug of the encoder: `EncoderError`."""
        try:
            return [f.numpy() for f in encode_clips(self.module, clips, self.device, self.autocast_dtype)]
        except RuntimeError as e:
            if len(clips) == 1:
                return [f"{type(e).__name__}: {first_line(e)}"]
            if torch.device(self.device).type == "cuda":
                torch.cuda.empty_cache()
            return [result for clip in clips for result in self._encode_batch([clip])]
        except Exception as e:
            raise encoder_failure(e, self.module, self.info.spec) from e


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def encoder_failure(error: BaseException, module: torch.nn.Module, spec: str) -> EncoderError:
    """One line naming the exception and where it was raised: the innermost frame in the encoder's
    own file, else the innermost frame of all."""
    at = raised_at(error, type(module))
    message = first_line(error)
    return EncoderError(
        f"encoder {spec!r} raised {type(error).__name__}{': ' + message if message else ''}{at}; "
        "fix the encoder and rerun (parts already written are kept)"
    )


def part_status(kept: int, lost: int, damage: str, max_dropped: float) -> tuple[str, str]:
    """(status, reason) of a part: partial when its source is damaged, failed when it dropped too much."""
    if damage:
        return STATUS_PARTIAL, f"{damage} ({kept} clips kept)"
    total = kept + lost
    if lost and (kept == 0 or lost > max_dropped * total):
        return STATUS_FAILED, f"{lost} of {total} clips dropped, more than --max-dropped {max_dropped:g}"
    return STATUS_COMPLETE, ""


class PartStream:
    """One part on its way into the store: its windows are encoded by the encoder loop and appended
    by the writer thread (the ``write_*`` methods, run there one at a time in submission order).

    The part's ``dropped`` attrs are what decoding dropped, then what encoding dropped, each in
    source order: the same list a whole-shard extraction gives.
    """

    def __init__(self, unit: WorkUnit, lock: PartLock, info: EncoderInfo, device: str, unfinished: set):
        self.unit, self.lock, self.info, self.device, self.unfinished = unit, lock, info, device, unfinished
        self.writer: PartWriter | None = None
        self.source: SourceInfo | None = None
        self.damage = ""
        self.decode_dropped: list[dict] = []
        self.encode_dropped: list[dict] = []
        self.decoded_keys: list[str] = []  # every clip decoded so far, for a shard found corrupt at its end
        self.kept = 0
        self.kept_samples = 0
        unfinished.add(self)

    @property
    def dropped(self) -> list[dict]:
        return self.decode_dropped + self.encode_dropped

    def take(self, window: DecodedWindow, encoded: PartBuffer | None) -> None:
        """Account for one window; `encoded` is None for a corrupt last window (nothing is kept)."""
        self.source, self.damage = window.source, window.damage or self.damage
        self.decode_dropped += window.dropped
        self.decoded_keys += window.keys
        if encoded is None:  # the damage may lie anywhere: every clip read from this shard is dropped
            corrupt = [dropped(k, DropReason.DAMAGED, "read from corrupt bytes") for k in self.decoded_keys]
            self.decode_dropped += corrupt
            self.encode_dropped, self.kept, self.kept_samples = [], 0, 0
            return
        self.encode_dropped += encoded.dropped
        self.kept += len(encoded.keys)
        self.kept_samples += sum(encoded.n_samples)

    def _writer(self) -> PartWriter:
        if self.writer is None:
            self.writer = PartWriter(self.unit.part_path, self.info.output_dim, self.info.dtype, self.device)
        return self.writer

    def write_clips(self, buffer: PartBuffer) -> None:
        self._writer().extend(buffer)

    def write_discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None

    def write_close(self, status: tuple[str, str]) -> None:
        try:
            self._writer().close(self.source, self.dropped, *status)
        finally:
            self.unfinished.discard(self)
            self.lock.release()

    def abort(self) -> None:
        """Remove the temp of a part that will not be finished (an error stopped the run)."""
        if self.writer is not None:
            self.writer.abort()


@dataclass
class StageSeconds:
    """Busy seconds per stage; decode is summed over the decoders, decode_wait is the encoder loop's wait."""

    decode: float = 0.0
    decode_wait: float = 0.0
    write: float = 0.0


def claim_units(
    todo: list[WorkUnit], report: ExtractReport, progress: ExtractProgress | None, held: list[PartLock]
) -> Iterator[tuple[WorkUnit, PartLock]]:
    """Yield the units this process claims, in order; units another live process holds are skipped.

    Every acquired lock is appended to `held`, so the caller can release them all on failure.
    """
    for unit in todo:
        lock = PartLock(unit.part_path)
        with store_errors(lock.path):
            if lock.acquire():
                held.append(lock)
                remove_part_temps(unit.part_path)  # ours to clean: a killed writer's, whatever its pid
        if not lock.held:
            report.elsewhere += 1
        elif (record := up_to_date_record(unit)) is not None:  # finished by another process since we planned
            lock.release()
            note_up_to_date(unit, record, report)
        else:
            yield unit, lock
            continue
        if progress:
            progress.unit_done(unit.label, skipped=True)


@dataclass(frozen=True)
class StreamSettings:
    """How the encoder loop is fed and what it keeps."""

    limits: WindowLimits
    decode_workers: int
    max_dropped: float
    keep_nonfinite: bool
    batch_seconds: float


def stream_parts(
    extractor: Extractor,
    claimed: Iterator[tuple[WorkUnit, PartLock]],
    held: list[PartLock],
    report: ExtractReport,
    stages: StageSeconds,
    settings: StreamSettings,
    progress: ExtractProgress | None = None,
) -> None:
    """Decode, encode and write every claimed unit, window by window.

    One writer thread appends a window's frames while the encoder works on the next; at most one
    window waits for it, so memory is bounded by a few windows plus one sharding-codec shard per
    part, whatever the shard's length. On an error every unfinished part's temp is removed and
    every claim released.
    """
    pipe = DecodePipe(settings.decode_workers, settings.limits)
    writes = ThreadPoolExecutor(1, "xares-write")
    unfinished: set[PartStream] = set()
    last_write: Future | None = None

    def timed(job: Callable, *args) -> None:
        begun = time.perf_counter()
        try:
            job(*args)
        finally:
            stages.write += time.perf_counter() - begun

    def settle() -> None:
        if last_write is not None:
            with store_errors(report.store):
                last_write.result()

    def write(job: Callable, *args) -> None:
        nonlocal last_write
        settle()
        last_write = writes.submit(timed, job, *args)

    def top_up() -> None:
        while not pipe.full and (claim := next(claimed, None)) is not None:
            pipe.submit(claim[0], claim)

    try:
        top_up()
        while pipe.pending:
            unit, lock = pipe.next_tag()
            part = PartStream(unit, lock, extractor.info, extractor.device, unfinished)
            for window in pipe.windows():
                top_up()
                stages.decode += window.decode_s
                encoded = None if window.corrupt else extractor.encode(window, progress, settings.keep_nonfinite)
                part.take(window, encoded)
                if encoded is None:
                    write(part.write_discard)
                elif encoded.keys:
                    write(part.write_clips, encoded)
                del window, encoded  # the audio goes now, not when the next window arrives
            status = part_status(part.kept, len(part.dropped), part.damage, settings.max_dropped)
            write(part.write_close, status)
            report.written.append(unit.part_path)
            if status[0] != STATUS_COMPLETE:
                report.not_complete.append(PartProblem(unit.label, unit.part_path, *status))
            report.clips += part.kept
            report.dropped += [{**d, "shard": unit.shard} for d in part.dropped]
            report.audio_seconds += part.kept_samples / SAMPLE_RATE
            if progress:
                progress.unit_done(unit.label, skipped=False)
        settle()
    finally:  # an error or Ctrl-C: no temp left behind, and our claims freed so a rerun in this process can take them
        stages.decode_wait = pipe.wait_s
        pipe.close()
        writes.shutdown(wait=True)
        for part in list(unfinished):
            part.abort()
        for lock in held:
            lock.release()


def run_profile(
    report: ExtractReport,
    info: EncoderInfo,
    stages: StageSeconds,
    encode_s: float,
    wall_s: float,
    memory: PeakMemory,
    settings: StreamSettings,
) -> dict:
    """One entry of the store's extraction profile: this run's cost and what produced it."""
    device = memory.device
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        **extraction_profile(
            wall_s,
            report.audio_seconds,
            report.clips,
            str(device),
            info.encoder_precision,
            stages.decode,
            encode_s,
            stages.write,
            memory.peak_mb,
            decode_wait_s=stages.decode_wait,
        ),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "memory": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS",
        "dtype": info.dtype,
        "parts": len(report.written),
        "decode_workers": settings.decode_workers,
        "batch_seconds": settings.batch_seconds,
        "window_seconds": settings.limits.seconds,
        "xares_version": info.xares_version,
    }


def extract(
    encoder: str,
    tasks: list[TaskConfig],
    cache_root: Path,
    data_root: Path,
    splits: SplitChoice | None = None,
    encoder_args: str | dict | None = None,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    device: str | None = None,  # None: cuda when available
    dtype: str = "float16",
    precision: str = REFERENCE_PRECISION,
    decode_workers: int = 0,
    progress: ExtractProgress | None = None,
    max_dropped: float = DEFAULT_MAX_DROPPED,
    keep_nonfinite: bool = False,
    threads: int | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    window_clips: int = DEFAULT_WINDOW_CLIPS,
    force: bool = False,
) -> ExtractReport:
    """Extract every missing part of `tasks` x `splits` for `encoder` into the cache at `cache_root`.

    Shards are fetched and decoded ahead of the encoder: in one background thread, or in
    `decode_workers` processes (for a fast GPU encoder that one core cannot keep fed). The encoder
    computes in `precision`: fp32 (the reference) or fp16/bf16 autocast, on any device. Parts left
    partial or failed are listed in the report's `not_complete` (see the module docstring). A shard
    is decoded and encoded in windows of at most `window_seconds` of audio and `window_clips` clips.
    A run that extracted anything appends its cost to the store's profile (`xares_llm.cache.profile`).
    Unless `force`, a run whose estimated store (`xares_llm.plan`) exceeds the free disk is refused
    before it starts.
    """
    started = time.perf_counter()
    if not 0 <= max_dropped <= 1:
        raise DataError(f"--max-dropped is a fraction of a part's clips, from 0 to 1; got {max_dropped}")
    if window_seconds <= 0 or window_clips < 1:
        raise DataError(f"decode windows need positive seconds and clips; got {window_seconds} s, {window_clips} clips")
    settings = StreamSettings(
        WindowLimits(window_seconds, window_clips), decode_workers, max_dropped, keep_nonfinite, batch_seconds
    )
    device = str(resolve_device(device))
    loaded, info = prepare_encoder(encoder, encoder_args, device, dtype, precision)
    use_threads(loaded.module, threads)
    report = ExtractReport(encoder_id=info.encoder_id, store=encoder_dir(cache_root, info.encoder_id))
    units = plan_units(tasks, splits or list(SPLITS), cache_root, data_root, info.encoder_id)
    with store_errors(report.store):
        remove_stale_temps(report.store)
        for directory in {u.part_path.parent for u in units}:
            remove_stale_temps(directory)
            remove_stale_locks(directory)
    todo = []
    for unit in units:
        if (record := up_to_date_record(unit)) is not None:
            note_up_to_date(unit, record, report)
        else:
            todo.append(unit)
    extractor = Extractor(loaded.module, info, device, batch_seconds)
    if todo and not force:
        check_room(estimate(extractor, todo, todo, cache_root, timed=False))
        extractor.encode_s = 0.0  # the estimate's probe batch is not part of the run's profile
    if progress:
        progress.start(len(units))
        for unit in units:
            if unit not in todo:
                progress.unit_done(unit.label, skipped=True)
    if not todo:
        report.wall_seconds = time.perf_counter() - started
        return report
    write_encoder_info(cache_root, info)
    loop_started = time.perf_counter()
    stages = StageSeconds()
    held: list[PartLock] = []
    claimed = claim_units(todo, report, progress, held)
    with PeakMemory(torch.device(device)) as memory:
        stream_parts(extractor, claimed, held, report, stages, settings, progress)
    loop_s = time.perf_counter() - loop_started
    if report.written:  # every claimed part may have been taken by another process meanwhile
        with store_errors(report.store / PROFILE_FILE):
            profile = run_profile(report, info, stages, extractor.encode_s, loop_s, memory, settings)
            append_profile(report.store, profile)
    report.wall_seconds = time.perf_counter() - started
    return report
