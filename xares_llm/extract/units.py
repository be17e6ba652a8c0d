"""Work units of an extraction: one per source shard, whether it is already done, and which this process claims."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from xares_llm.audio.decoding import REFERENCE_RESAMPLER
from xares_llm.cache import PartAttrs, PartLock, part_name, read_part_record, remove_part_temps, split_dir
from xares_llm.cache.format import STATUS_COMPLETE, STATUS_PARTIAL
from xares_llm.errors import DataError
from xares_llm.extract.decode import WorkUnit, source_info
from xares_llm.extract.report import ExtractProgress, ExtractReport, note_up_to_date
from xares_llm.extract.store import store_errors
from xares_llm.tasks.schema import Split, TaskConfig

# Splits to extract: the same for every task, or per task name (training tasks need train, evaluated ones test).
SplitChoice = list[Split] | dict[str, list[Split]]


def plan_units(
    tasks: list[TaskConfig],
    splits: SplitChoice,
    cache_root: Path,
    data_root: Path,
    encoder_id: str,
    resampler: str = REFERENCE_RESAMPLER,
) -> list[WorkUnit]:
    """One unit per distinct (dataset, split, shard).

    Nothing is downloaded here: a missing shard is fetched by the decode worker, so downloads
    overlap with encoding, and a complete part whose audio is absent (a shared cache) needs none.
    """
    units: dict[tuple[str, str, str], WorkUnit] = {}
    for task in tasks:
        for split in splits.get(task.name, []) if isinstance(splits, dict) else splits:
            directory = split_dir(cache_root, encoder_id, task.dataset.name, split)
            for shard in task.dataset.shards(split):
                units.setdefault(
                    (task.dataset.name, split, shard),
                    WorkUnit(task, split, shard, data_root, directory / part_name(shard), resampler),
                )
    return list(units.values())


def parse_slice(text: str) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N) -> (K, N): the K-th of N slices of the planned parts."""
    k, sep, n = text.partition("/")
    try:
        part, parts = int(k), int(n)
    except ValueError:
        part, parts = 0, 0
    if not sep or not 1 <= part <= parts:
        raise DataError(f"--slice takes K/N with 1 <= K <= N (for example 2/8); got {text!r}")
    return part, parts


def slice_units(units: list[WorkUnit], part: int, parts: int) -> list[WorkUnit]:
    """Every N-th planned unit starting at the K-th: the same split for any process given the same tasks.

    Round robin spreads each dataset's shards over the slices. Slices never overlap; the part locks
    stay the safety net when two processes are given the same slice or a task is requeued.
    """
    return units[part - 1 :: parts]


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
