"""Tasks and mixtures: what data a task reads, how its targets are found, and how it is scored.

A task YAML (``configs/tasks/<name>.yaml``)::

    name: esc50
    track: A                     # A (closed set), B (open set) or demo
    version: 1
    dataset:
      name: esc50                # folder of the feature store
      repo: mispeech/xares_llm_data   # Hugging Face dataset repo; null = generated locally (demo)
      train: ["ESC-50/train/esc50_fold_{1..4}_0000000.tar.gz"]   # paths inside the repo, brace patterns
      test: ["ESC-50/test/esc50_fold_5_0000000.tar.gz"]
    labels: {train: "label;labels", test: "text;caption;captions;label;labels"}
    prompt: "Classify the environmental sound."
    metric: {name: accuracy, args: {}}

A mixture YAML lists task weights (a number or ``by_shards``) and the tasks it evaluates.
"""

from __future__ import annotations

import json
from typing import Literal

from braceexpand import braceexpand
from pydantic import BaseModel, ConfigDict, Field, field_validator

from xares_llm.config import load_config, packaged_names
from xares_llm.errors import ConfigError

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
TRACK_MIXTURES = {"A": "task1", "B": "task2", "all": "all"}  # SPEC 4: the mixture each track trains on
FALLBACK_LABEL_KEYS = ("captions", "caption", "text")  # SPEC 3: tried after the task's own keys


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    repo: str | None = None
    train: list[str] = Field(min_length=1)
    test: list[str] = Field(min_length=1)

    def shards(self, split: Split) -> list[str]:
        """Repo-relative shard paths of one split, brace patterns expanded, in order."""
        return [path for pattern in getattr(self, split) for path in braceexpand(pattern)]


class LabelKeys(Strict):
    train: str
    test: str

    def keys(self, split: Split) -> list[str]:
        return [k for k in getattr(self, split).split(";") if k]


class MetricConfig(Strict):
    name: str
    args: dict = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from xares_llm.metrics import METRIC_NAMES

        if name not in METRIC_NAMES:
            raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(METRIC_NAMES)}")
        return name


class TaskConfig(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    track: Literal["A", "B", "demo"]
    version: int = 1
    dataset: DatasetConfig
    labels: LabelKeys
    prompt: str = Field(min_length=1)
    metric: MetricConfig


class MixtureConfig(Strict):
    name: str
    weights: dict[str, float | Literal["by_shards"]] = Field(min_length=1)
    evaluate: list[str] = Field(min_length=1)

    @field_validator("weights")
    @classmethod
    def _positive(cls, weights: dict) -> dict:
        for task, w in weights.items():
            if w != "by_shards" and w <= 0:
                raise ValueError(f"weight of {task!r} must be > 0 or 'by_shards'")
        return weights


def load_task(name_or_path: str) -> TaskConfig:
    return load_config(TaskConfig, "tasks", name_or_path)


def load_mixture(name_or_path: str) -> MixtureConfig:
    mixture = load_config(MixtureConfig, "mixtures", name_or_path)
    for task in {*mixture.weights, *mixture.evaluate}:
        load_task(task)  # fails early, naming the unknown task
    return mixture


def mixture_weights(mixture: MixtureConfig) -> dict[str, float]:
    """Normalised task weights (SPEC 4): a number is a relative weight; ``by_shards`` is the task's
    share of all train shards in the mixture. Both kinds are then normalised together."""
    shards = {t: len(load_task(t).dataset.shards("train")) for t in mixture.weights}
    total_shards = sum(shards.values())
    raw = {t: shards[t] / total_shards if w == "by_shards" else float(w) for t, w in mixture.weights.items()}
    total = sum(raw.values())
    return {t: w / total for t, w in raw.items()}


def resolve_tasks(names: str) -> list[TaskConfig]:
    """``"a,b"`` of task or mixture names (or YAML paths) -> the tasks, mixtures expanded, in order."""
    tasks: dict[str, TaskConfig] = {}
    task_names, mixture_names = set(packaged_names("tasks")), set(packaged_names("mixtures"))
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name in mixture_names and name not in task_names:
            mixture = load_mixture(name)
            for task in dict.fromkeys([*mixture.weights, *mixture.evaluate]):
                tasks.setdefault(task, load_task(task))
        else:
            task = load_task(name)
            tasks.setdefault(task.name, task)
    if not tasks:
        raise ConfigError("no tasks given: pass task or mixture names, e.g. --tasks demo")
    return list(tasks.values())


def targets(meta: dict, keys: list[str]) -> list[str]:
    """The targets of one sample (SPEC 3): the first present, non-empty key wins, then the fallbacks.

    A list value gives one target per element; numbers become strings. No key -> no target.
    """
    for key in [*keys, *FALLBACK_LABEL_KEYS]:
        value = meta.get(key)
        if value is None or value == "" or value == []:
            continue
        values = value if isinstance(value, list) else [value]
        return [as_text(v) for v in values]
    return []


def as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
