"""Score a run from its predictions files: per task, per track mean, overall.

Needs no model for the string metrics, so `xares score RUN` reruns them in seconds. Each metric runs
once per task and gives both the score and its per-clip form. Writes ``scores.json`` (task -> metric,
score, samples, settings, task version), ``scores.tsv``, and ``per_sample/<task>.jsonl`` and
``per_sample/<task>.stats.npz`` (see `xares_llm.scoring.per_sample`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.errors import XaresError
from xares_llm.lalm.runs import read_recipe, read_run
from xares_llm.metrics import MetricOptions, compute_metric
from xares_llm.provenance import software_versions
from xares_llm.scoring.cost import run_cost, store_parts
from xares_llm.scoring.per_sample import write_per_sample
from xares_llm.scoring.predictions import PREDICTIONS_DIR, read_counts, read_predictions
from xares_llm.tasks.snapshots import read_run_tasks

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
    prompt: str = ""
    n_references: int = 0  # (clip, reference) targets scored
    n_dropped: int = 0  # test samples extraction could not use (those with known labels score as empty)
    # of those, the ones in no denominator, by reason (undecodable and empty audio, as the reference;
    # samples without audio, json or target cannot be scored); see xares_llm/tasks/data.py NOT_CLIPS
    n_left_out: dict[str, int] = field(default_factory=dict)
    n_unlabelled: int = 0  # test clips in the store without a target (no label, or all filtered)
    test_targets: dict = field(default_factory=dict)  # what evaluation left out (TargetCounts)


@dataclass
class Scores:
    tasks: dict[str, TaskScore]
    tracks: dict[str, float] = field(default_factory=dict)  # plain mean per track (published weights are all 1)
    overall: float = 0.0  # plain mean over every scored task
    comparable_to_reference: bool = False
    differences: list[str] = field(default_factory=list)  # why not comparable, one line each
    provenance: dict = field(default_factory=dict)  # versions, recipe, seed, devices and precisions
    cost: dict = field(default_factory=dict)  # device-hours per stage (xares_llm/scoring/cost.py)

    def to_dict(self) -> dict:
        return {
            "tasks": {name: asdict(s) for name, s in self.tasks.items()},
            "tracks": self.tracks,
            "overall": self.overall,
            "comparable_to_reference": self.comparable_to_reference,
            "differences": self.differences,
            "provenance": self.provenance,
            "cost": self.cost,
        }


def score_run(run_dir: Path, options: MetricOptions | None = None) -> Scores:
    """Compute every task's metric from ``<run>/predictions/*.jsonl`` and write the score files."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / PREDICTIONS_DIR).glob("*.jsonl"))
    if not files:
        raise XaresError(f"no predictions in {run_dir / PREDICTIONS_DIR}; run `xares eval {run_dir}` first")
    results = {}
    for path, task in zip(files, read_run_tasks(run_dir, [f.stem for f in files]), strict=True):
        rows = read_predictions(path)
        counts = read_counts(run_dir, task.name) or {}
        result = compute_metric(
            task.metric.name,
            [r["prediction"] for r in rows],
            [r["references"] for r in rows],
            task.metric.args,
            options,
        )
        results[task.name] = TaskScore(
            task.name,
            task.track,
            task.metric.name,
            result.score,
            len(rows),
            result.settings,
            task.version,
            prompt=task.prompt,
            n_references=sum(len(r["references"]) for r in rows),
            n_dropped=counts.get("dropped", 0),
            n_left_out=counts.get("left_out", {}),
            n_unlabelled=counts.get("unlabelled", 0),
            test_targets=counts,
        )
        write_per_sample(run_dir, task.name, rows, task.metric.name, result.settings["args"], result.stats)
    scores = summarise(results)
    scores.provenance, scores.differences = describe_run(run_dir, results)
    scores.differences += [
        f"task {s.task}: scored with substitute metric models or without the error checker"
        for s in results.values()
        if not s.settings.get("official", True)
    ]
    scores.comparable_to_reference = not scores.differences
    scores.cost = run_cost(run_dir, list(results))
    atomic_write_text(run_dir / SCORES_JSON, json.dumps(scores.to_dict(), indent=2, sort_keys=True))
    write_tsv(run_dir / SCORES_TSV, scores)
    return scores


def describe_run(run_dir: Path, results: dict[str, TaskScore]) -> tuple[dict, list[str]]:
    """The settings that produced the scores, and every one that differs from the reference system."""
    from xares_llm.scoring.reference import TRACK_MIXTURES, differences

    provenance: dict = {"software": software_versions()}
    info = read_run(run_dir)
    if info is None:
        return provenance, ["no run.json beside the predictions: the training settings are unknown"]
    recipe = read_recipe(run_dir)
    tasks = {t.name: t for t in read_run_tasks(run_dir, list(dict.fromkeys([*info.train_tasks, *results])))}
    provenance |= {
        "encoder_id": info.encoder_id,
        "encoder_spec": info.encoder_spec,
        "mixture": info.mixture,
        "seed": recipe.seed,
        "recipe": recipe.model_dump(mode="json"),
        "extraction": {
            "precision": info.encoder_precision,
            "resampler": info.encoder_resampler,
            "store_dtype": info.store_dtype,
            "devices": extraction_devices(info.cache_root, info.encoder_id, list(tasks.values())),
        },
        "training": {
            "device": info.device,
            "precision": info.precision,
            "steps": info.steps,
            "steps_done": info.steps_done,
            "targets": info.train_targets,
        },
    }
    single = info.mixture not in TRACK_MIXTURES and len(info.train_tasks) == 1
    found = differences(
        recipe,
        info.mixture,
        list(info.train_tasks),
        {name: task.prompt for name, task in tasks.items()},
        {name: task.filter_targets for name, task in tasks.items()},
        info.encoder_precision,
        info.steps_done,
        info.encoder_resampler,
        single_task=tasks.get(info.mixture) if single else None,
    )
    return provenance, found


def extraction_devices(cache_root: str | None, encoder_id: str, tasks: list) -> list[str] | None:
    """Where the encoder ran for these tasks' parts (each part records it); None without the cache."""
    parts = store_parts(cache_root, encoder_id, [task.dataset.name for task in tasks])
    return None if parts is None else sorted({attrs.writer.get("device") or "unknown" for attrs in parts})


def summarise(results: dict[str, TaskScore]) -> Scores:
    tracks: dict[str, list[float]] = {}
    for s in results.values():
        tracks.setdefault(s.track, []).append(s.score)
    means = {track: sum(v) / len(v) for track, v in sorted(tracks.items())}
    overall = sum(s.score for s in results.values()) / len(results)
    return Scores(results, means, overall)


def write_tsv(path: Path, scores: Scores) -> None:
    lines = ["task\ttrack\tmetric\tscore\tn_samples\tleft_out"]
    lines += [
        f"{s.task}\t{s.track}\t{s.metric}\t{s.score:.6f}\t{s.n_samples}\t{left_out_text(s.n_left_out)}"
        for s in scores.tasks.values()
    ]
    lines += [f"mean\t{track}\t\t{value:.6f}\t\t" for track, value in scores.tracks.items()]
    lines.append(f"overall\t\t\t{scores.overall:.6f}\t\t")
    atomic_write_text(path, "\n".join(lines) + "\n")


def left_out_text(left_out: dict[str, int]) -> str:
    """``2 undecodable, 1 empty audio``: the test samples in no denominator, by reason."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(left_out.items()))
