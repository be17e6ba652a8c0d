"""Stage one: run the frozen encoder once over every clip and write feature-store parts.

Work unit = one source shard -> one part. Per unit: read the tar with integrity checks
(`xares_llm.shards`), decode each clip to mono 16 kHz (`xares_llm.decode`), sort by length, batch
by total padded seconds, encode, trim to valid frames, write the part atomically. Decoding of the
next shard runs in a background thread (or `decode_workers` processes, which die with this one)
and the write of the previous part in another, so the encoder rarely waits.

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
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

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
    write_part,
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
from xares_llm.cache.writer import write_failure
from xares_llm.constants import DEFAULT_BATCH_SECONDS, SAMPLE_RATE
from xares_llm.decode import DecodedShard, DropReason, WorkUnit, decode_shard, dropped, source_info
from xares_llm.demo_data import write_demo_shards
from xares_llm.devices import resolve_device
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import AUTOCAST_DTYPES, encode_clips
from xares_llm.encoders.loader import raised_at
from xares_llm.errors import DataError, EncoderError, StoreError
from xares_llm.plan import check_room, estimate
from xares_llm.tasks import SPLITS, Split, TaskConfig
from xares_llm.threads import use_threads
from xares_llm.workers import die_with_parent

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


def length_batches(lengths: list[int], batch_seconds: float) -> Iterator[list[int]]:
    """Indices sorted by length (longest first), grouped so batch size x longest <= batch_seconds."""
    budget = batch_seconds * SAMPLE_RATE
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        longest = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) + 1) * longest > budget:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


class Extractor:
    """Encodes decoded shards into part buffers with one loaded encoder."""

    def __init__(self, module: torch.nn.Module, info: EncoderInfo, device: str, batch_seconds: float):
        self.module, self.info, self.device, self.batch_seconds = module, info, device, batch_seconds
        # fp32 unless encoder.json says otherwise: autocast is an explicit choice, never implied by the store dtype
        self.autocast_dtype = AUTOCAST_DTYPES[info.encoder_precision]

    def encode(self, shard: DecodedShard, progress: ExtractProgress | None, keep_nonfinite: bool = False) -> PartBuffer:
        """Encode every clip of `shard`; a clip whose features hold NaN/Inf (as stored; int8: before quantising) is
        dropped as ``nonfinite`` unless `keep_nonfinite`."""
        buffer = PartBuffer(
            dim=self.info.output_dim, dtype=self.info.dtype, dropped=list(shard.dropped), device=self.device
        )
        features: dict[int, np.ndarray] = {}
        failed: dict[int, tuple[DropReason, str]] = {}
        for batch in length_batches([len(a) for a in shard.audio], self.batch_seconds):
            for index, result in zip(batch, self._encode_batch([shard.audio[i] for i in batch]), strict=True):
                if isinstance(result, str):
                    failed[index] = (DropReason.ENCODER, result)
                    continue
                stored = self._stored(result, shard.keys[index])
                bad = int((~np.isfinite(stored)).any(axis=1).sum()) if stored.size else 0
                if bad and not keep_nonfinite:
                    where = "" if np.isfinite(result).all() else " (as computed)"
                    failed[index] = (DropReason.NONFINITE, f"{bad} of {len(stored)} frames hold NaN or Inf{where}")
                else:
                    features[index] = stored
            if progress:
                progress.advance(len(batch), sum(len(shard.audio[i]) for i in batch) / SAMPLE_RATE)
        for index, key in enumerate(shard.keys):  # source order, whatever order we encoded in
            if index in failed:
                buffer.dropped.append(dropped(key, *failed[index], meta=shard.meta[index]))
            else:
                buffer.add(key, features[index], shard.meta[index], len(shard.audio[index]))
        return buffer

    def _stored(self, frames: np.ndarray, key: str) -> np.ndarray:
        """The frames as the part buffer takes them (held_dtype); a wrong shape breaks the encoder contract."""
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


def part_status(buffer: PartBuffer, damage: str, max_dropped: float) -> tuple[str, str]:
    """(status, reason) of a part: partial when its source is damaged, failed when it dropped too much."""
    kept, lost = len(buffer.keys), len(buffer.dropped)
    if damage:
        return STATUS_PARTIAL, f"{damage} ({kept} clips kept)"
    total = kept + lost
    if lost and (kept == 0 or lost > max_dropped * total):
        return STATUS_FAILED, f"{lost} of {total} clips dropped, more than --max-dropped {max_dropped:g}"
    return STATUS_COMPLETE, ""


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


def write_and_release(
    unit: WorkUnit, buffer: PartBuffer, source: SourceInfo, status: tuple[str, str], lock: PartLock
) -> None:
    try:
        with store_errors(unit.part_path):
            write_part(unit.part_path, buffer, source, *status)
    finally:
        lock.release()


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
    force: bool = False,
) -> ExtractReport:
    """Extract every missing part of `tasks` x `splits` for `encoder` into the cache at `cache_root`.

    Shards are fetched and decoded ahead of the encoder: in one background thread, or in
    `decode_workers` processes (for a fast GPU encoder that one core cannot keep fed). The encoder
    computes in `precision`: fp32 (the reference) or fp16/bf16 autocast, on any device. Parts left
    partial or failed are listed in the report's `not_complete` (see the module docstring). Unless
    `force`, a run whose estimated store (`xares_llm.plan`) exceeds the free disk is refused before it starts.
    """
    started = time.perf_counter()
    if not 0 <= max_dropped <= 1:
        raise DataError(f"--max-dropped is a fraction of a part's clips, from 0 to 1; got {max_dropped}")
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
    if progress:
        progress.start(len(units))
        for unit in units:
            if unit not in todo:
                progress.unit_done(unit.label, skipped=True)
    if not todo:
        report.wall_seconds = time.perf_counter() - started
        return report
    write_encoder_info(cache_root, info)
    held: list[PartLock] = []
    claimed = claim_units(todo, report, progress, held)
    pending: deque[tuple[WorkUnit, PartLock, Future]] = deque()
    depth = max(1, decode_workers) + 1  # shards decoding ahead of the encoder

    def top_up(decoder: Executor) -> None:
        while len(pending) < depth and (claim := next(claimed, None)) is not None:
            pending.append((*claim, decoder.submit(decode_shard, claim[0])))

    decoder = (
        ProcessPoolExecutor(
            decode_workers,
            mp_context=multiprocessing.get_context("spawn"),  # no fork after torch
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
        if decode_workers
        else ThreadPoolExecutor(1, "xares-decode")
    )
    try:
        with decoder, ThreadPoolExecutor(1, "xares-write") as writer:
            top_up(decoder)
            pending_write: Future | None = None
            while pending:
                unit, lock, decoding = pending.popleft()
                shard = decoding.result()
                top_up(decoder)
                buffer = extractor.encode(shard, progress, keep_nonfinite)
                status = part_status(buffer, shard.damage, max_dropped)
                if pending_write is not None:
                    pending_write.result()
                pending_write = writer.submit(write_and_release, unit, buffer, shard.source, status, lock)
                report.written.append(unit.part_path)
                if status[0] != STATUS_COMPLETE:
                    report.not_complete.append(PartProblem(unit.label, unit.part_path, *status))
                report.clips += len(buffer.keys)
                report.dropped += [{**d, "shard": unit.shard} for d in buffer.dropped]
                report.audio_seconds += sum(buffer.n_samples) / SAMPLE_RATE
                if progress:
                    progress.unit_done(unit.label, skipped=False)
            if pending_write is not None:
                pending_write.result()
    finally:  # an error or Ctrl-C: free our claims so a rerun in this process can take them
        for future in (item[2] for item in pending):
            future.cancel()
        for lock in held:
            lock.release()
    report.wall_seconds = time.perf_counter() - started
    return report
