"""Where training writes its per-step numbers: ``log.jsonl`` always, TensorBoard event files on request.

``log.jsonl`` stays the source of truth (resuming truncates it, reports read it); TensorBoard is a
view for a person watching a run, written by `torch.utils.tensorboard` when the optional
``tensorboard`` package is installed (``pip install 'xares-llm[tensorboard]'``).

    with open_train_log(run_dir, ["tensorboard"]) as log:
        log.write(StepRecord(step, loss, lr, grad_norm, tokens_per_s=..., task_loss={...}))
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from xares_llm.errors import XaresError
from xares_llm.lalm.runs import LOG_FILE

LOG_KINDS = ("jsonl", "tensorboard")
TENSORBOARD_DIR = "tensorboard"


@dataclass
class StepRecord:
    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float | None = None
    task_loss: dict[str, float] = field(default_factory=dict)  # mean loss of each task's examples in the batch

    def to_json(self) -> dict:
        """The log line: the four fields every reader expects, then the optional ones when present."""
        line: dict = {"step": self.step, "loss": self.loss, "lr": self.lr, "grad_norm": self.grad_norm}
        if self.tokens_per_s is not None:
            line["tokens_per_s"] = self.tokens_per_s
        if self.task_loss:
            line["task_loss"] = dict(self.task_loss)
        return line


class StepWriter(Protocol):
    def write(self, record: StepRecord) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class JsonlWriter:
    """Appends one JSON line per step to ``<run>/log.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, record: StepRecord) -> None:
        self._file.write(json.dumps(record.to_json()) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardWriter:
    """Scalars train/loss, train/lr, train/grad_norm, train/tokens_per_s and loss/<task>, by step."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise XaresError(
                "--log tensorboard needs the tensorboard package: pip install 'xares-llm[tensorboard]'"
            ) from e
        self.log_dir = Path(log_dir)
        # A resumed run recomputes the steps after its checkpoint: purge_step drops their old events.
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def write(self, record: StepRecord) -> None:
        scalars = {"train/loss": record.loss, "train/lr": record.lr, "train/grad_norm": record.grad_norm}
        if record.tokens_per_s is not None:
            scalars["train/tokens_per_s"] = record.tokens_per_s
        scalars |= {f"loss/{task}": value for task, value in record.task_loss.items()}
        for tag, value in scalars.items():
            if math.isfinite(value):  # a non-finite value stops training; it is in log.jsonl, not plotted
                self._writer.add_scalar(tag, value, record.step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class TrainLog:
    """All the writers of one run behind one interface; a context manager that closes them."""

    def __init__(self, writers: list[StepWriter]) -> None:
        self.writers = writers

    def write(self, record: StepRecord) -> None:
        for writer in self.writers:
            writer.write(record)

    def flush(self) -> None:
        for writer in self.writers:
            writer.flush()

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def __enter__(self) -> TrainLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_log_kinds(text: str | None) -> list[str]:
    """``--log tensorboard`` (comma list); jsonl is always written, so naming it changes nothing."""
    kinds = [k.strip().lower() for k in (text or "").split(",") if k.strip()]
    unknown = [k for k in kinds if k not in LOG_KINDS]
    if unknown:
        raise XaresError(f"--log: unknown {', '.join(unknown)}; choose from {', '.join(LOG_KINDS)}")
    return kinds


def open_train_log(run_dir: Path, kinds: list[str] | tuple[str, ...] = (), first_step: int = 0) -> TrainLog:
    """``log.jsonl`` (appended) plus ``<run>/tensorboard/`` event files when "tensorboard" is in `kinds`.

    `first_step`: the checkpoint a run resumes from; TensorBoard events after it are purged, as
    `xares_llm.lalm.train.truncate_log` cuts log.jsonl.
    """
    run_dir = Path(run_dir)
    writers: list[StepWriter] = [JsonlWriter(run_dir / LOG_FILE)]
    if "tensorboard" in kinds:
        writers.append(TensorBoardWriter(run_dir / TENSORBOARD_DIR, purge_step=first_step + 1 if first_step else None))
    return TrainLog(writers)
