"""The encoder loop: decoded windows in, encoded frames appended to their parts by one writer thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from xares_llm.cache import PartLock
from xares_llm.cache.format import STATUS_COMPLETE
from xares_llm.constants import SAMPLE_RATE
from xares_llm.extract.decode import WorkUnit
from xares_llm.extract.decode_pipe import DecodePipe, WindowLimits
from xares_llm.extract.encode import Extractor
from xares_llm.extract.parts import PartStream, part_status
from xares_llm.extract.report import ExtractProgress, ExtractReport, PartProblem
from xares_llm.extract.store import store_errors


@dataclass
class StageSeconds:
    """Busy seconds per stage; decode is summed over the decoders, decode_wait is the encoder loop's wait."""

    decode: float = 0.0
    decode_wait: float = 0.0
    write: float = 0.0


@dataclass(frozen=True)
class StreamSettings:
    """How the encoder loop is fed and what it keeps."""

    limits: WindowLimits
    decode_workers: int
    max_dropped: float
    keep_nonfinite: bool
    batch_seconds: float


class WriteQueue:
    """One writer thread; at most one job waits for it, so the encoder runs one window ahead of the disk."""

    def __init__(self, stages: StageSeconds, store: Path) -> None:
        self.stages, self.store = stages, store
        self.executor = ThreadPoolExecutor(1, "xares-write")
        self.last: Future | None = None

    def _timed(self, job: Callable, *args) -> None:
        begun = time.perf_counter()
        try:
            job(*args)
        finally:
            self.stages.write += time.perf_counter() - begun

    def settle(self) -> None:
        """Wait for the job in flight; its error (a full disk, say) is raised here as one line."""
        if self.last is not None:
            with store_errors(self.store):
                self.last.result()

    def submit(self, job: Callable, *args) -> None:
        self.settle()
        self.last = self.executor.submit(self._timed, job, *args)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


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

    The writer thread appends a window's frames while the encoder works on the next, so memory is
    bounded by a few windows plus one sharding-codec shard per part, whatever the shard's length.
    On an error every unfinished part's temp is removed and every claim released.
    """
    pipe = DecodePipe(settings.decode_workers, settings.limits)
    writes = WriteQueue(stages, report.store)
    unfinished: set[PartStream] = set()

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
                    writes.submit(part.write_discard)
                elif encoded.keys:
                    writes.submit(part.write_clips, encoded)
                del window, encoded  # the audio goes now, not when the next window arrives
            status = part_status(part.kept, len(part.dropped), part.damage, settings.max_dropped)
            writes.submit(part.write_close, status)
            account(report, unit, part, status)
            if progress:
                progress.unit_done(unit.label, skipped=False)
        writes.settle()
    finally:  # an error or Ctrl-C: no temp left behind, and our claims freed so a rerun in this process can take them
        stages.decode_wait = pipe.wait_s
        pipe.close()
        writes.shutdown()
        for part in list(unfinished):
            part.abort()
        for lock in held:
            lock.release()


def account(report: ExtractReport, unit: WorkUnit, part: PartStream, status: tuple[str, str]) -> None:
    """Add one finished part to the run's report."""
    report.written.append(unit.part_path)
    if status[0] != STATUS_COMPLETE:
        report.not_complete.append(PartProblem(unit.label, unit.part_path, *status))
    report.clips += part.kept
    report.dropped += [{**d, "shard": unit.shard} for d in part.dropped]
    report.audio_seconds += part.kept_samples / SAMPLE_RATE
