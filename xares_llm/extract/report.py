"""What an extraction tells its caller: progress while it runs, then the parts written, skipped or not complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from xares_llm.cache import PartAttrs
from xares_llm.cache.format import STATUS_COMPLETE
from xares_llm.errors import DataError
from xares_llm.extract.decode import WorkUnit


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


def note_up_to_date(unit: WorkUnit, record: PartAttrs, report: ExtractReport) -> None:
    """Count a part left as it is; a partial one stays listed as not complete on every run."""
    report.up_to_date += 1
    if record.status != STATUS_COMPLETE:
        report.not_complete.append(PartProblem(unit.label, unit.part_path, record.status, record.reason))
