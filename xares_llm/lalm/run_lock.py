"""One writer per run dir: `xares train` holds ``<run>/train.lock`` from start to finish.

The lock is the feature store's part lock (cache/locks.py): an flock the kernel drops when the
holder dies, so a killed trainer never blocks the next one, and a reused pid means nothing. A second
trainer on the same run dir refuses at once naming the holder; `xares eval` on a run being trained
says so instead of reading checkpoints as they are replaced. Holding the lock, a trainer also removes
the checkpoint temp dirs a killed or failed save left behind.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from xares_llm.cache.atomic import remove_path
from xares_llm.cache.errors import CacheError
from xares_llm.cache.locks import PartLock, parse_owner
from xares_llm.distributed import current_world
from xares_llm.errors import XaresError
from xares_llm.lalm.runs import CHECKPOINTS_DIR

LOCK_NAME = "train"  # <run>/train.lock
CHECKPOINT_TEMP = ".step-"  # checkpoints/.step-NNNNNNN-<random>: a save in progress (checkpoints.py)

P = ParamSpec("P")
R = TypeVar("R")


def holder(run_dir: Path) -> str:
    """Who the run's lock file names, for an error line."""
    try:
        owner = parse_owner(PartLock(run_dir / LOCK_NAME).path.read_text(errors="replace")[:4096])
    except OSError:
        owner = None
    return f"pid {owner.get('pid')} on {owner.get('host')}" if owner else "another process"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run dir's lock, or refuse in one line when another trainer holds it or it cannot be written."""
    run_dir = Path(run_dir)
    lock = PartLock(run_dir / LOCK_NAME)
    try:
        taken = lock.acquire()
    except (OSError, CacheError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise XaresError(f"cannot write run dir {run_dir}: {why}; give a --run-dir on a writable disk") from e
    if not taken:
        raise XaresError(
            f"{run_dir} is being trained by {holder(run_dir)}; wait for it, or train into another --run-dir"
        )
    try:
        remove_checkpoint_temps(run_dir)
        yield
    finally:
        lock.release()


def holds_run_lock(train: Callable[P, R]) -> Callable[P, R]:
    """Run `train(run_dir, ...)` holding the run dir's lock (on the main process under torchrun)."""

    @functools.wraps(train)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        run_dir = Path(kwargs["run_dir"] if "run_dir" in kwargs else args[0])
        with run_lock(run_dir) if current_world().main else contextlib.nullcontext():
            return train(*args, **kwargs)

    return locked


def refuse_if_training(run_dir: Path) -> None:
    """A one-line error when a trainer holds the run dir (evaluating it now would race its checkpoints).

    Asked on the main process only: under torchrun the other ranks of `xares run` may reach evaluation
    while rank 0, which holds the lock, still finishes training.
    """
    lock = PartLock(Path(run_dir) / LOCK_NAME)
    if not current_world().main or not lock.path.is_file():
        return
    try:
        free = lock.acquire()
    except (OSError, CacheError):
        return  # a read-only copy of a run: no trainer writes it
    if free:
        lock.release()
        return
    raise XaresError(f"{run_dir} is being trained by {holder(run_dir)}; evaluate it when training finishes")


def remove_checkpoint_temps(run_dir: Path) -> int:
    """Remove checkpoint temp dirs of saves that were killed or failed; returns how many."""
    folder = Path(run_dir) / CHECKPOINTS_DIR
    stale = sorted(folder.glob(f"{CHECKPOINT_TEMP}*")) if folder.is_dir() else []
    for path in stale:
        remove_path(path)
    return len(stale)
