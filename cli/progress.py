"""Rich progress for every long command: one column set, one reporter class per stage.

Each reporter fills its bar's ``status`` text, so extraction, training and evaluation can share
one `Progress` (as `xares run` and `xares demo` do).
"""

from __future__ import annotations

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

if TYPE_CHECKING:
    from xares_llm.pipeline import Hooks


def make_progress() -> Progress:
    return Progress(
        TextColumn("[cyan]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
    )


class ExtractReporter:
    """Parts done / total with ETA, plus clips and audio hours per second of wall time."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None
        self.clips, self.audio_seconds = 0, 0.0

    def start(self, total_units: int) -> None:
        self.task = self.progress.add_task("extract", total=total_units, status="")

    def advance(self, clips: int, audio_seconds: float) -> None:
        self.clips += clips
        self.audio_seconds += audio_seconds
        elapsed = self.progress.tasks[self.task].elapsed or 1e-9
        rate = self.audio_seconds / 3600 / elapsed
        self.progress.update(self.task, status=f"{self.clips} clips, {rate:.2f} audio h/s")

    def unit_done(self, label: str, skipped: bool) -> None:
        self.progress.update(self.task, advance=1, description=f"extract {label}")


class TrainReporter:
    """Steps with ETA, plus the last loss, learning rate and steps per second."""

    def __init__(self, progress: Progress, log_every: int):
        self.progress, self.log_every = progress, log_every
        self.task: TaskID | None = None
        self.total = 0

    def start(self, first_step: int, total_steps: int) -> None:
        self.total = total_steps
        self.task = self.progress.add_task("train", total=total_steps, completed=first_step, status="")

    def step(self, step: int, loss: float, lr: float) -> None:
        if step % self.log_every == 0 or step == self.total:
            self.progress.update(self.task, completed=step)
            speed = self.progress.tasks[self.task].speed
            rate = f"{speed:.1f} steps/s" if speed else ""
            self.progress.update(self.task, status=f"loss {loss:.4f}  lr {lr:.2e}  {rate}")


class EvalReporter:
    """One bar per evaluated task, in clips, with clips per second beside the ETA."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None

    def start_task(self, task: str, total_clips: int) -> None:
        self.task = self.progress.add_task(f"eval {task}", total=total_clips, status="")

    def advance(self, clips: int) -> None:
        self.progress.advance(self.task, clips)
        speed = self.progress.tasks[self.task].speed
        if speed:
            self.progress.update(self.task, status=f"{speed:.1f} clips/s")


def pipeline_hooks(progress: Progress, log_every: int) -> Hooks:
    from xares_llm.pipeline import Hooks

    return Hooks(
        stage=lambda name: err.print(f"[bold]{name}[/bold]", highlight=False),
        extract=ExtractReporter(progress),
        train=TrainReporter(progress, log_every),
        evaluate=EvalReporter(progress),
    )
