"""The run directory: what a training run was started with, its checkpoints and its status.

::

    <run>/run.json                 RunInfo: encoder, mixture, status, steps, the process training it
    <run>/recipe.yaml              the resolved recipe (resuming and evaluation read this)
    <run>/tasks/<name>.yaml        every task config the run uses, as resolved when it started
    <run>/mixture.yaml             the mixture it trains on
    <run>/tokenizer/               the tokenizer, so evaluation needs no hub
    <run>/log.jsonl                one line per step: step, loss, lr, grad_norm
    <run>/checkpoints/step-NNNNNNN/  trainable.safetensors + state.pt (optimiser, scheduler, RNG)
    <run>/predictions/<task>.jsonl, scores.json, scores.tsv   written by `xares eval`
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from xares_llm import __version__
from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cache.locks import owner_record, process_alive
from xares_llm.config import read_yaml, validate
from xares_llm.errors import XaresError
from xares_llm.lalm.recipe import Recipe

RUN_FILE = "run.json"
RECIPE_FILE = "recipe.yaml"
TOKENIZER_DIR = "tokenizer"
LOG_FILE = "log.jsonl"
CHECKPOINTS_DIR = "checkpoints"
WEIGHTS_FILE = "trainable.safetensors"
STATE_FILE = "state.pt"


@dataclass
class RunInfo:
    encoder_id: str
    encoder_spec: str
    mixture: str
    train_tasks: dict[str, float]  # task -> normalised weight
    eval_tasks: list[str]
    input_dim: int
    frame_rate_hz: float
    steps: int
    status: str = "running"  # running | finished | interrupted (Ctrl-C, SIGTERM) | failed (an error)
    steps_done: int = 0
    cache_root: str | None = None  # the feature cache it trained from (eval and score default to it)
    store_dtype: str | None = None
    encoder_precision: str | None = None  # compute precision of the encoder at extraction
    encoder_resampler: str | None = None  # how its clips reached 16 kHz (encoder.json `resampler`)
    device: str | None = None  # where it trained
    precision: str | None = None  # training compute precision: fp32, float16 or bfloat16 autocast
    train_targets: dict[str, dict] = field(default_factory=dict)  # task -> TargetCounts of its train split
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    xares_version: str = __version__
    owner: dict | None = None  # {host, pid, start} of the process training it (cache/locks.py records)
    stopped: str | None = None  # why an interrupted or failed run stopped

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def mark_running(self) -> None:
        self.status, self.owner, self.stopped = "running", owner_record(), None

    def mark_stopped(self, error: BaseException) -> None:
        """`interrupted` for Ctrl-C or a signal, `failed` for any other exception, with its one line."""
        self.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self.stopped = str(error) or type(error).__name__


def live_status(run_dir: Path, info: RunInfo) -> str:
    """The status, except that a `running` run whose process is gone reads `stale` (it was killed
    without a chance to record it); on another host, `running` holds until run.json is a day old."""
    if info.status != "running":
        return info.status
    age = time.time() - (Path(run_dir) / RUN_FILE).stat().st_mtime
    return "running" if process_alive(info.owner, age) else "stale"


def read_run(run_dir: Path) -> RunInfo | None:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, a number past int's digit limit
        raise XaresError(f"{path}: not a run record ({str(e).splitlines()[0][:200]})") from e
    problem = run_record_problem(data)
    if problem:
        raise XaresError(f"{path}: {problem}; it is not a run record this version can use")
    names = {f.name for f in dataclasses.fields(RunInfo)}
    return RunInfo(**{k: v for k, v in data.items() if k in names})


# The run.json fields every reader uses, and their JSON types (bool is not an int here).
RUN_FIELDS = {
    "encoder_id": str,
    "encoder_spec": str,
    "mixture": str,
    "train_tasks": dict,
    "eval_tasks": list,
    "input_dim": int,
    "frame_rate_hz": (int, float),
    "steps": int,
    "status": str,
    "steps_done": int,
}


def run_record_problem(data: object) -> str | None:
    """What makes a parsed run.json unusable, in a few words, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    for name, kind in RUN_FIELDS.items():
        value = data.get(name, 0 if name == "steps_done" else "running" if name == "status" else None)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} is {type(value).__name__}, expected {getattr(kind, '__name__', 'a number')}"
    if data["input_dim"] <= 0 or data["steps"] <= 0 or data.get("steps_done", 0) < 0:
        return "input_dim and steps must be positive, steps_done not negative"
    weights = data["train_tasks"].values()
    if not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights):
        return "train_tasks weights are not numbers"
    if not all(isinstance(t, str) for t in [*data["train_tasks"], *data["eval_tasks"]]):
        return "task names are not strings"
    return None


def write_run(run_dir: Path, info: RunInfo) -> None:
    path = Path(run_dir) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(dataclasses.asdict(info), indent=2))


def find_runs(root: Path) -> list[tuple[Path, RunInfo]]:
    """Every run dir at or below `root` (one with a run.json), by path."""
    root = Path(root)
    found = [(path.parent, read_run(path.parent)) for path in sorted(root.rglob(RUN_FILE))]
    return [(run_dir, info) for run_dir, info in found if info is not None]


def read_log(path: Path) -> list[dict]:
    """The log's records (`log_entry_ok`); a line cut short by a kill, or not a record, is ignored."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):  # a cut line, or one that is not a record at all
            continue
        if log_entry_ok(entry):
            entries.append(entry)
    return entries


def log_entry_ok(entry: object) -> bool:
    """An object with an integer step, a numeric loss and, if any, a mapping of task -> numeric loss."""

    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not isinstance(entry, dict) or not isinstance(entry.get("step"), int) or not number(entry.get("loss")):
        return False
    task_loss = entry.get("task_loss", {})
    return isinstance(task_loss, dict) and all(number(v) for v in task_loss.values())


def read_recipe(run_dir: Path) -> Recipe:
    path = Path(run_dir) / RECIPE_FILE
    return validate(Recipe, read_yaml(path), path)


def require_run(run_dir: Path) -> RunInfo:
    info = read_run(run_dir)
    if info is None:
        raise XaresError(f"{run_dir} is not a training run (no {RUN_FILE}); start one with `xares train`")
    return info


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"step-{step:07d}"


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (both files present), oldest first."""
    base = Path(run_dir) / CHECKPOINTS_DIR
    if not base.is_dir():
        return []
    found = []
    for path in base.iterdir():
        if path.name.startswith("step-") and (path / WEIGHTS_FILE).is_file() and (path / STATE_FILE).is_file():
            found.append((int(path.name.removeprefix("step-")), path))
    return sorted(found)


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for _, path in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
