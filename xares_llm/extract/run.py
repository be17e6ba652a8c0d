"""Stage one: run the frozen encoder once over every clip and write feature-store parts.

Work unit = one source shard -> one part. A shard streams through in windows of consecutive clips
(at most `window_seconds` of audio, `window_clips` clips): read the tar with integrity checks
(`xares_llm.audio.shards`), decode each clip to mono 16 kHz (`xares_llm.extract.decode`), sort the window by
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

import time
from pathlib import Path

import torch

from xares_llm.audio.decoding import REFERENCE_RESAMPLER
from xares_llm.audio.demo_data import ensure_demo_shards
from xares_llm.cache import PartLock, remove_stale_locks, remove_stale_temps
from xares_llm.cache.format import REFERENCE_PRECISION, encoder_dir
from xares_llm.cache.profile import PROFILE_FILE, append_profile
from xares_llm.constants import DEFAULT_BATCH_SECONDS
from xares_llm.errors import DataError
from xares_llm.extract.decode import DEFAULT_WINDOW_CLIPS, DEFAULT_WINDOW_SECONDS
from xares_llm.extract.decode_pipe import WindowLimits
from xares_llm.extract.plan import check_room, estimate
from xares_llm.extract.profile import run_profile
from xares_llm.extract.report import ExtractProgress, ExtractReport, note_up_to_date
from xares_llm.extract.setup import set_up
from xares_llm.extract.store import store_errors, write_encoder_info
from xares_llm.extract.stream import StageSeconds, StreamSettings, stream_parts
from xares_llm.extract.units import SplitChoice, claim_units, slice_units, up_to_date_record
from xares_llm.memory import PeakMemory
from xares_llm.tasks.schema import TaskConfig

DEFAULT_MAX_DROPPED = 0.01  # a part dropping more than this fraction of its clips is not complete


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
    resampler: str = REFERENCE_RESAMPLER,
    decode_workers: int = 0,
    progress: ExtractProgress | None = None,
    max_dropped: float = DEFAULT_MAX_DROPPED,
    keep_nonfinite: bool = False,
    threads: int | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    window_clips: int = DEFAULT_WINDOW_CLIPS,
    force: bool = False,
    part_slice: tuple[int, int] | None = None,
) -> ExtractReport:
    """Extract every missing part of `tasks` x `splits` for `encoder` into the cache at `cache_root`.

    Shards are fetched and decoded ahead of the encoder: in one background thread, or in
    `decode_workers` processes (for a fast GPU encoder that one core cannot keep fed). The encoder
    computes in `precision`: fp32 (the reference) or fp16/bf16 autocast, on any device; clips reach
    16 kHz through `resampler` (sinc, the reference's, or soxr). Parts left
    partial or failed are listed in the report's `not_complete` (see the module docstring). A shard
    is decoded and encoded in windows of at most `window_seconds` of audio and `window_clips` clips.
    A run that extracted anything appends its cost to the store's profile (`xares_llm.cache.profile`).
    Unless `force`, a run whose estimated store (`xares_llm.extract.plan`) exceeds the free disk is refused
    before it starts. `part_slice` (K, N) keeps the K-th of N slices of the planned parts (a job array's task).
    """
    started = time.perf_counter()
    if not 0 <= max_dropped <= 1:
        raise DataError(f"--max-dropped is a fraction of a part's clips, from 0 to 1; got {max_dropped}")
    if window_seconds <= 0 or window_clips < 1:
        raise DataError(f"decode windows need positive seconds and clips; got {window_seconds} s, {window_clips} clips")
    settings = StreamSettings(
        WindowLimits(window_seconds, window_clips), decode_workers, max_dropped, keep_nonfinite, batch_seconds
    )
    ensure_demo_shards(tasks, data_root)
    setup = set_up(
        encoder, tasks, cache_root, data_root, splits, encoder_args, batch_seconds, device, dtype, precision, threads,
        resampler,
    )  # fmt: skip
    extractor, info, units = setup.extractor, setup.extractor.info, setup.units
    if part_slice is not None:
        units = slice_units(units, *part_slice)
    report = ExtractReport(encoder_id=info.encoder_id, store=encoder_dir(cache_root, info.encoder_id))
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
    with PeakMemory(torch.device(extractor.device)) as memory:
        stream_parts(extractor, claimed, held, report, stages, settings, progress)
    loop_s = time.perf_counter() - loop_started
    if report.written:  # every claimed part may have been taken by another process meanwhile
        with store_errors(report.store / PROFILE_FILE):
            profile = run_profile(report, info, stages, extractor.encode_s, loop_s, memory, settings)
            append_profile(report.store, profile)
    report.wall_seconds = time.perf_counter() - started
    return report
