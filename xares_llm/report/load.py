"""What a report reads from one result directory: a LALM run (``scores.json``) or a probe output.

Both give per task: track, metric (name and args), score, test clip count and the predictions rows
the intervals are resampled from. A run also has its training log. Scores are taken as written by
`xares score`; the report recomputes only intervals, from the same predictions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from xares_llm.errors import XaresError
from xares_llm.lalm.runs import LOG_FILE, read_log, read_run
from xares_llm.scoring.predictions import PREDICTIONS_DIR, read_predictions
from xares_llm.scoring.score import SCORES_JSON

PROBE_SCORES = "probe_scores.json"


@dataclass
class TaskResult:
    task: str
    track: str
    metric: str
    args: dict
    score: float
    n_samples: int
    official: bool  # False when scored with substitute metric models
    rows: list[dict] = field(default_factory=list)  # predictions: {key, prediction, references}


@dataclass
class ResultDir:
    """One report column."""

    path: Path
    label: str
    kind: str  # "run" or "probe"
    tasks: dict[str, TaskResult]
    log: list[dict] = field(default_factory=list)
    encoder_id: str | None = None
    differences: list[str] = field(default_factory=list)  # why not comparable with the reference
    comparable: bool = False  # scores.json's comparable_to_reference
    provenance: dict = field(default_factory=dict)  # the settings scores.json records (seed groups compare them)
    cost: dict = field(default_factory=dict)  # device-hours per stage (xares_llm/scoring/cost.py)


def load_result_dir(path: Path) -> ResultDir:
    """Read a run dir (``scores.json``) or a probe output (``probe_scores.json``); one-line error otherwise."""
    path = Path(path)
    if (path / SCORES_JSON).is_file():
        return _load_scores(path, path / SCORES_JSON, "run")
    if (path / PROBE_SCORES).is_file():
        return _load_scores(path, path / PROBE_SCORES, "probe")
    if not path.is_dir():
        raise XaresError(f"{path}: no such directory; give run dirs (with {SCORES_JSON}) or probe outputs")
    hint = f"score it first: `xares score {path}`" if (path / PREDICTIONS_DIR).is_dir() else "not a run or probe output"
    raise XaresError(f"{path}: no {SCORES_JSON} or {PROBE_SCORES}; {hint}")


def _load_scores(path: Path, scores_file: Path, kind: str) -> ResultDir:
    try:
        data = json.loads(scores_file.read_text())
        entries = data["tasks"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise XaresError(f"{scores_file}: not a scores file ({e}); rescore with `xares score`") from e
    if kind == "probe":
        return _load_probe(path, scores_file, data)
    tasks = {}
    for name, entry in entries.items():
        try:
            settings = entry.get("settings") or {}
            tasks[name] = TaskResult(
                task=name,
                track=str(entry.get("track", "")),
                metric=str(entry["metric"]),
                args=dict(settings.get("args") or {}),
                score=float(entry["score"]),
                n_samples=int(entry.get("n_samples", 0)),
                official=bool(settings.get("official", True)),
                rows=_predictions(path, name),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise XaresError(f"{scores_file}: task {name!r} lacks a field ({e}); rescore with `xares score`") from e
    info = read_run(path) if kind == "run" else None
    log_file = path / LOG_FILE
    head_of = _read_probe(path.parent)  # a probe's head folder, rescored: titled with the probe's encoder
    return ResultDir(
        path=path,
        label=f"probe {head_of.get('encoder_id', '')} {path.name}" if head_of else path.name,
        kind=kind,
        tasks=tasks,
        log=read_log(log_file) if log_file.is_file() else [],
        encoder_id=info.encoder_id if info else data.get("encoder_id"),
        differences=list(data.get("differences") or []),
        comparable=bool(data.get("comparable_to_reference")),
        provenance=dict(data.get("provenance") or {}),
        cost=dict(data.get("cost") or {}),
    )


def _load_probe(path: Path, scores_file: Path, data: dict) -> ResultDir:
    """A probe output as one column: each task's primary head (the one its track means use), titled with
    the encoder; its predictions and task config are in the head's folder."""
    from xares_llm.tasks.snapshots import read_run_tasks

    tasks = {}
    for name, entry in data["tasks"].items():
        try:
            head = entry["primary_head"]
            score = entry["heads"][head]
            config = read_run_tasks(path / head, [name])[0]
            tasks[name] = TaskResult(
                task=name,
                track=str(entry.get("track", "")),
                metric=str(score["metric"]),
                args=dict(config.metric.args),
                score=float(score["score"]),
                n_samples=int(entry.get("n_test", 0)),
                official=bool((score.get("settings") or {}).get("official", True)),
                rows=_predictions(path / head, name),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise XaresError(f"{scores_file}: task {name!r} lacks a field ({e}); rerun `xares probe`") from e
    encoder = data.get("encoder_id") or path.name
    return ResultDir(path=path, label=f"probe {encoder}", kind="probe", tasks=tasks, encoder_id=data.get("encoder_id"))


def _read_probe(path: Path) -> dict:
    try:
        return json.loads((path / PROBE_SCORES).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _predictions(path: Path, task: str) -> list[dict]:
    file = path / PREDICTIONS_DIR / f"{task}.jsonl"
    return read_predictions(file) if file.is_file() else []


def unique_labels(results: list[ResultDir]) -> None:
    """Column labels: the directory name, with parents added until every label differs."""
    depth = 1
    while len({r.label for r in results}) < len(results) and depth < 8:
        depth += 1
        for r in results:
            r.label = "/".join(r.path.resolve().parts[-depth:])
