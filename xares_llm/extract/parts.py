"""One part's lifecycle: its windows accounted for, appended by the writer thread, closed with its status."""

from __future__ import annotations

from xares_llm.cache import EncoderInfo, PartBuffer, PartLock, SourceInfo
from xares_llm.cache.format import STATUS_COMPLETE, STATUS_FAILED, STATUS_PARTIAL
from xares_llm.cache.writer import PartWriter
from xares_llm.extract.decode import DecodedWindow, DropReason, WorkUnit, dropped


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
