"""The packaged tasks and mixtures at a glance (`xares tasks`): one summary row per config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from xares_llm.config import known_names
from xares_llm.tasks.schema import SPLITS, TaskConfig, load_mixture, load_task, mixture_weights

TRACK_ORDER = {"A": 0, "B": 1, "demo": 2, "user": 3}  # Track A first, as the challenge lists them
MIXTURE_ORDER = ("task1", "task2", "all")  # the challenge's mixtures first, then any others by name


@dataclass(frozen=True)
class TaskSummary:
    name: str
    track: str
    metric: str  # name and arguments, e.g. "map (num_classes=200)"
    train_shards: int
    test_shards: int
    folders: tuple[str, ...]  # dataset folders inside the repo, in order of first use
    repo: str | None  # Hugging Face dataset repo; None = generated locally
    prompt: str  # the instruction given to the LLM, verbatim


@dataclass(frozen=True)
class MixtureSummary:
    name: str
    weights: dict[str, float]  # task -> normalised training weight (sums to 1)
    by_shards: tuple[str, ...]  # tasks whose weight is their share of the train shards
    evaluate: tuple[str, ...]


def summarise_task(task: TaskConfig) -> TaskSummary:
    args = ", ".join(f"{k}={v}" for k, v in task.metric.args.items())
    return TaskSummary(
        name=task.name,
        track=task.track,
        metric=f"{task.metric.name} ({args})" if args else task.metric.name,
        train_shards=len(task.dataset.shards("train")),
        test_shards=len(task.dataset.shards("test")),
        folders=tuple(dict.fromkeys(dataset_folder(p) for s in SPLITS for p in task.dataset.shards(s))),
        repo=task.dataset.repo,
        prompt=task.prompt,
    )


def dataset_folder(relative: str) -> str:
    """``ESC-50/train/x.tar.gz`` -> ``ESC-50``; ``S00/train_0000.tar.gz`` (MECAT, no split folder) -> ``S00``."""
    parent = PurePosixPath(relative).parent
    return str(parent.parent if parent.name in SPLITS else parent)


def task_summaries() -> list[TaskSummary]:
    """Every task (packaged and on the config search path), Track A then B then demo, by name within a track."""
    rows = [summarise_task(load_task(name)) for name in known_names("tasks")]
    return sorted(rows, key=lambda r: (TRACK_ORDER.get(r.track, len(TRACK_ORDER)), r.name))


def mixture_summaries() -> list[MixtureSummary]:
    """Every mixture with its normalised weights: task1, task2, all, then the rest by name."""
    names = known_names("mixtures")
    rows = []
    for name in [*(n for n in MIXTURE_ORDER if n in names), *(n for n in names if n not in MIXTURE_ORDER)]:
        mixture = load_mixture(name)
        rows.append(
            MixtureSummary(
                name=name,
                weights=mixture_weights(mixture),
                by_shards=tuple(t for t, w in mixture.weights.items() if w == "by_shards"),
                evaluate=tuple(mixture.evaluate),
            )
        )
    return rows
