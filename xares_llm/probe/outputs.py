"""What a probe writes, laid out like a run so `xares score <out>/<head>` rescores any head::

<out>/probe_scores.json                      ProbeResults: per task and head score, metric, counts,
                                             chosen hyper-parameters, wall seconds; device, seed, versions
<out>/<head>/predictions/<task>.jsonl        {task, key, prediction, references} per test clip
<out>/<head>/predictions/<task>.counts.json  what the test split left out
<out>/<head>/tasks/<task>.yaml               the task config as probed
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.errors import XaresError
from xares_llm.scoring.predictions import predictions_path, write_counts, write_predictions
from xares_llm.tasks.schema import TaskConfig
from xares_llm.tasks.snapshots import write_task_snapshots

PROBE_SCORES = "probe_scores.json"
KIND = "xares-probe/1"
NOTE = "probe scores from light heads on frozen features: they rank encoders but are not LALM scores"
HEADS = ("linear", "mlp", "knn", "ctc")
PRIMARY_ORDER = ("mlp", "linear", "knn", "ctc")  # the head of a task whose score enters the track means


def parse_heads(text: str) -> tuple[str, ...]:
    heads = tuple(dict.fromkeys(h.strip() for h in text.split(",") if h.strip()))
    unknown = [h for h in heads if h not in HEADS]
    if unknown or not heads:
        raise XaresError(
            f"--heads: unknown head(s) {', '.join(unknown) or '(none given)'}; allowed: {', '.join(HEADS)}"
        )
    return heads


@dataclass
class HeadScore:
    score: float
    metric: str
    settings: dict  # what the metric reports (models, pairs, ...)
    hyperparameters: dict  # fixed and chosen settings of the head
    wall_seconds: float  # training and prediction of this head


@dataclass
class TaskProbe:
    task: str
    track: str
    family: str  # classification, asr or captioning
    metric: str
    n_train: int  # train clips with a target
    n_test: int  # test clips scored
    train_targets: dict  # TargetCounts of the train split
    test_targets: dict
    embeddings: dict  # pooling, empty clips, non-finite frames, embedding cache status
    heads: dict[str, HeadScore] = field(default_factory=dict)
    wall_seconds: float = 0.0  # pooling, all heads, scoring

    @property
    def primary(self) -> str:
        return next(h for h in PRIMARY_ORDER if h in self.heads)


@dataclass
class ProbeResults:
    encoder_id: str
    encoder_spec: str
    seed: int
    device: str
    pooling: str
    heads: list[str]  # as requested
    versions: dict
    tasks: dict[str, TaskProbe] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why it was not probed, one line
    wall_seconds: float = 0.0

    def tracks(self) -> dict[str, float]:
        """Plain mean of each task's primary head per track (see PRIMARY_ORDER)."""
        means: dict[str, list[float]] = {}
        for probe in self.tasks.values():
            means.setdefault(probe.track, []).append(probe.heads[probe.primary].score)
        return {track: sum(v) / len(v) for track, v in sorted(means.items())}

    def head_tracks(self) -> dict[str, dict[str, float]]:
        """Per head, the plain mean per track over the tasks that head scored."""
        means: dict[str, dict[str, list[float]]] = {}
        for probe in self.tasks.values():
            for head, score in probe.heads.items():
                means.setdefault(head, {}).setdefault(probe.track, []).append(score.score)
        return {h: {t: sum(v) / len(v) for t, v in sorted(by.items())} for h, by in means.items()}

    def to_dict(self) -> dict:
        tasks = {name: asdict(p) | {"primary_head": p.primary} for name, p in self.tasks.items()}
        return {
            "kind": KIND,
            "note": NOTE,
            "encoder_id": self.encoder_id,
            "encoder_spec": self.encoder_spec,
            "seed": self.seed,
            "device": self.device,
            "pooling": self.pooling,
            "heads": self.heads,
            "tasks": tasks,
            "tracks": self.tracks(),
            "head_tracks": self.head_tracks(),
            "skipped": self.skipped,
            "wall_seconds": self.wall_seconds,
            "versions": self.versions,
        }


def write_head_predictions(out_dir: Path, head: str, task: TaskConfig, rows: list[dict], counts: dict) -> Path:
    head_dir = Path(out_dir) / head
    write_predictions(predictions_path(head_dir, task.name), rows)
    write_counts(head_dir, task.name, counts)
    write_task_snapshots(head_dir, [task])
    return predictions_path(head_dir, task.name)


def write_results(out_dir: Path, results: ProbeResults) -> Path:
    path = Path(out_dir) / PROBE_SCORES
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(results.to_dict(), indent=2, sort_keys=True))
    return path
