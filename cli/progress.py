"""Rich progress for every long command: one column set, one reporter class per stage.

Each reporter fills its bar's ``status`` text, so extraction, training and evaluation can share
one `Progress` (as `xares run` and `xares demo` do). Off a terminal (nohup, CI, a batch job), where
a live bar shows nothing until it ends, each reporter prints one plain line every
`PLAIN_INTERVAL_S` seconds instead. Speeds are in one unit: x real time for audio, steps/s for training.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from xares_llm.cli.console import err
from xares_llm.errors import XaresError

if TYPE_CHECKING:
    from xares_llm.pipeline import Hooks


PROGRESS_ENV = "XARES_PROGRESS_SECONDS"
DEFAULT_INTERVAL_S = 30.0
PLAIN_INTERVAL_S: float | None = None  # off a terminal, a line this often; None: $XARES_PROGRESS_SECONDS or 30


def plain_interval() -> float:
    """Seconds between plain progress lines; a setting that is not a number of seconds is one line."""
    if PLAIN_INTERVAL_S is not None:
        return PLAIN_INTERVAL_S
    text = os.environ.get(PROGRESS_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise XaresError(f"${PROGRESS_ENV} is {text[:40]!r}; set it to a number of seconds, e.g. 30")
    return seconds


def make_progress() -> Progress:
    return Progress(
        TextColumn("[cyan]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )


def speed_text(audio_seconds: float, wall_seconds: float) -> str:
    """Audio processed per second of wall time, as a multiple of real time (0.4x, 38x, 1850x)."""
    ratio = audio_seconds / max(wall_seconds, 1e-9)
    return f"{ratio:.2g}x real time" if ratio < 10 else f"{ratio:.0f}x real time"


def eta_text(done: float, total: float, elapsed: float) -> str:
    if done <= 0 or total <= done:
        return "-"
    seconds = int(elapsed * (total - done) / done)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Reporter:
    """A bar on a terminal; elsewhere one plain line every PLAIN_INTERVAL_S seconds (and at the end)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.last_line = self.started
        self.interval = plain_interval()

    def plain(self, text: str, final: bool = False) -> None:
        now = time.monotonic()
        if self.progress.disable and (final or now - self.last_line >= self.interval):
            self.last_line = now
            err.print(text, highlight=False, soft_wrap=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class ExtractReporter(Reporter):
    """Parts done / total with ETA, plus clips and the speed in x real time."""

    def __init__(self, progress: Progress):
        super().__init__(progress)
        self.clips, self.audio_seconds, self.units, self.done = 0, 0.0, 0, 0

    def start(self, total_units: int) -> None:
        self.units = total_units
        self.task = self.progress.add_task("extract", total=total_units, status="")

    def advance(self, clips: int, audio_seconds: float) -> None:
        self.clips += clips
        self.audio_seconds += audio_seconds
        status = f"{self.clips} clips, {speed_text(self.audio_seconds, self.elapsed)}"
        self.progress.update(self.task, status=status)
        self.plain(f"extract: {self.done}/{self.units} parts, {status}, eta {self.eta}")

    def unit_done(self, label: str, skipped: bool) -> None:
        self.done += 1
        self.progress.update(self.task, advance=1, description=f"extract {label}")
        self.plain(
            f"extract: {self.done}/{self.units} parts, {self.clips} clips, eta {self.eta}", self.done == self.units
        )

    @property
    def eta(self) -> str:
        return eta_text(self.done, self.units, self.elapsed)


class TrainReporter(Reporter):
    """Steps with ETA (updated every step), plus the last loss, learning rate and steps per second."""

    def __init__(self, progress: Progress, log_every: int):
        super().__init__(progress)
        self.log_every = log_every
        self.first = self.total = 0

    def start(self, first_step: int, total_steps: int) -> None:
        self.first, self.total = first_step, total_steps
        self.started = time.monotonic()
        if first_step:
            err.print(f"resumed from step {first_step} of {total_steps}", highlight=False)
        self.task = self.progress.add_task("train", total=total_steps, completed=first_step, status="")

    def step(self, step: int, loss: float, lr: float) -> None:
        self.progress.update(self.task, completed=step)
        rate = (step - self.first) / max(self.elapsed, 1e-9)
        status = f"loss {loss:.4f}  lr {lr:.2e}  {rate:.1f} steps/s"
        if step % self.log_every == 0 or step == self.total:
            self.progress.update(self.task, status=status)
        eta = eta_text(step - self.first, self.total - self.first, self.elapsed)
        self.plain(f"train: step {step}/{self.total}, {status}, eta {eta}", step == self.total)


class EvalReporter(Reporter):
    """One bar per evaluated task, in clips, with clips per second beside the ETA."""

    def __init__(self, progress: Progress):
        super().__init__(progress)
        self.name, self.clips, self.total = "", 0, 0

    def start_task(self, task: str, total_clips: int) -> None:
        self.name, self.clips, self.total = task, 0, total_clips
        self.started = time.monotonic()
        self.task = self.progress.add_task(f"eval {task}", total=total_clips, status="")

    def advance(self, clips: int) -> None:
        self.clips += clips
        self.progress.advance(self.task, clips)
        speed = self.progress.tasks[self.task].speed
        if speed:
            self.progress.update(self.task, status=f"{speed:.1f} clips/s")
        eta = eta_text(self.clips, self.total, self.elapsed)
        self.plain(f"eval {self.name}: {self.clips}/{self.total} clips, eta {eta}", self.clips == self.total)


def pipeline_hooks(progress: Progress, log_every: int) -> Hooks:
    from xares_llm.pipeline import Hooks

    return Hooks(
        stage=lambda name: err.print(f"[bold]{name}[/bold]", highlight=False),
        extract=ExtractReporter(progress),
        train=TrainReporter(progress, log_every),
        evaluate=EvalReporter(progress),
    )
