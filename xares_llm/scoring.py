"""Score a run from its predictions files: per task, per track mean, overall.

Needs no model for the string metrics, so `xares score RUN` reruns them in seconds. Writes
``scores.json`` (task -> metric, score, samples, settings, task version) and ``scores.tsv``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xares_llm.errors import XaresError
from xares_llm.metrics import MetricOptions, compute_metric
from xares_llm.predictions import PREDICTIONS_DIR, read_predictions
from xares_llm.tasks import load_task

SCORES_JSON = "scores.json"
SCORES_TSV = "scores.tsv"


@dataclass
class TaskScore:
    task: str
    track: str
    metric: str
    score: float
    n_samples: int  # test clips scored
    settings: dict  # metric arguments and the models that produced the number
    version: int  # the task config's version


@dataclass
class Scores:
    tasks: dict[str, TaskScore]
    tracks: dict[str, float] = field(default_factory=dict)  # plain mean per track (SPEC 5: weights all 1)
    overall: float = 0.0  # plain mean over every scored task

    def to_dict(self) -> dict:
        return {
            "tasks": {name: asdict(s) for name, s in self.tasks.items()},
            "tracks": self.tracks,
            "overall": self.overall,
        }


def score_run(run_dir: Path, options: MetricOptions | None = None) -> Scores:
    """Compute every task's metric from ``<run>/predictions/*.jsonl`` and write the score files."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / PREDICTIONS_DIR).glob("*.jsonl"))
    if not files:
        raise XaresError(f"no predictions in {run_dir / PREDICTIONS_DIR}; run `xares eval {run_dir}` first")
    results = {}
    for path in files:
        task = load_task(path.stem)
        rows = read_predictions(path)
        result = compute_metric(
            task.metric.name,
            [r["prediction"] for r in rows],
            [r["references"] for r in rows],
            task.metric.args,
            options,
        )
        results[task.name] = TaskScore(
            task.name, task.track, task.metric.name, result.score, len(rows), result.settings, task.version
        )
    scores = summarise(results)
    (run_dir / SCORES_JSON).write_text(json.dumps(scores.to_dict(), indent=2, sort_keys=True))
    write_tsv(run_dir / SCORES_TSV, scores)
    return scores


def summarise(results: dict[str, TaskScore]) -> Scores:
    tracks: dict[str, list[float]] = {}
    for s in results.values():
        tracks.setdefault(s.track, []).append(s.score)
    means = {track: sum(v) / len(v) for track, v in sorted(tracks.items())}
    overall = sum(s.score for s in results.values()) / len(results)
    return Scores(results, means, overall)


def write_tsv(path: Path, scores: Scores) -> None:
    lines = ["task\ttrack\tmetric\tscore\tn_samples"]
    lines += [f"{s.task}\t{s.track}\t{s.metric}\t{s.score:.6f}\t{s.n_samples}" for s in scores.tasks.values()]
    lines += [f"mean\t{track}\t\t{value:.6f}\t" for track, value in scores.tracks.items()]
    lines.append(f"overall\t\t\t{scores.overall:.6f}\t")
    path.write_text("\n".join(lines) + "\n")
