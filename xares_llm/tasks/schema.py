"""Tasks and mixtures: what data a task reads, how its targets are found, and how it is scored.

A task YAML (``configs/tasks/<name>.yaml``)::

    name: esc50
    track: A                     # A (closed set), B (open set), demo or user
    version: 1
    dataset:
      name: esc50                # folder of the feature store
      repo: mispeech/xares_llm_data   # Hugging Face dataset repo; null = generated locally (demo)
      train: ["ESC-50/train/esc50_fold_{1..4}_0000000.tar.gz"]   # paths inside the repo, brace patterns
      test: ["ESC-50/test/esc50_fold_5_0000000.tar.gz"]
    labels: {train: "label;labels", test: "text;caption;captions;label;labels"}
    prompt: "Classify the environmental sound."
    metric: {name: accuracy, args: {}}
    filter_targets: true         # drop the targets the reference system drops (official tasks)

A mixture YAML lists task weights (a number or ``by_shards``) and the tasks it evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from braceexpand import braceexpand
from pydantic import BaseModel, ConfigDict, Field, field_validator

from xares_llm.config import config_kind, find_config, load_config, resolve_config_path
from xares_llm.constants import SPLITS as STORE_SPLITS
from xares_llm.errors import ConfigError

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = STORE_SPLITS
FALLBACK_LABEL_KEYS = ("captions", "caption", "text")  # tried after the task's own keys, as the reference does
# The reference's target filter (see `filter_reason`).
COMBINING_FIRST, COMBINING_LAST = 0x0301, 0x036F  # combining diacritical marks it counts
MAX_COMBINING_MARKS = 3
REPETITIVE_MIN_LENGTH = 10  # longer texts need at least REPETITIVE_MIN_DISTINCT distinct characters
REPETITIVE_MIN_DISTINCT = 4


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no .nan/.inf weights


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
        from xares_llm.metrics import metric_names

        if name not in metric_names():
            raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(metric_names())}")
        return name


class TaskConfig(Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    track: Literal["A", "B", "demo", "user"]  # user: your own task, averaged on its own
    version: int = 1
    dataset: DatasetConfig
    labels: LabelKeys
    prompt: str = Field(min_length=1)
    metric: MetricConfig
    filter_targets: bool = False  # the reference's target filter; on for the official tasks

    def split_targets(self, meta: dict, split: Split) -> SampleTargets:
        """The targets of one sample in `split`, after the reference's filter when it is on."""
        found = targets(meta, self.labels.keys(split))
        if not self.filter_targets:
            return found
        kept = [t for t in found.texts if filter_reason(t) is None]
        return SampleTargets(kept, found.unusable, found.filtered + len(found.texts) - len(kept))


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


@dataclass(frozen=True)
class Mixture:
    """A loaded mixture: everything keyed by task name, every task config resolved."""

    name: str
    weights: dict[str, float | str]  # task name -> relative weight or "by_shards"
    evaluate: list[str]  # task names
    tasks: dict[str, TaskConfig]  # every task it trains or evaluates

    def to_config(self) -> MixtureConfig:
        return MixtureConfig(name=self.name, weights=self.weights, evaluate=self.evaluate)


def load_task(name_or_path: str) -> TaskConfig:
    return load_config(TaskConfig, "tasks", name_or_path)


def load_mixture(name_or_path: str) -> Mixture:
    """A mixture by name or path; its tasks are names or YAML paths (relative to the mixture's file)."""
    path = resolve_config_path("mixtures", name_or_path)
    config = load_config(MixtureConfig, "mixtures", str(path))
    tasks: dict[str, TaskConfig] = {}
    sources: dict[str, str] = {}
    by_reference: dict[str, str] = {}
    for reference in dict.fromkeys([*config.weights, *config.evaluate]):
        relative = path.parent / reference
        source = str(relative) if reference.endswith((".yaml", ".yml")) and relative.is_file() else reference
        task = load_task(source)
        if task.name in tasks and sources[task.name] != str(resolve_config_path("tasks", source)):
            raise ConfigError(
                f"{path}: two tasks are named {task.name!r}: {sources[task.name]} and "
                f"{resolve_config_path('tasks', source)}; rename one"
            )
        tasks[task.name] = task
        sources[task.name] = str(resolve_config_path("tasks", source))
        by_reference[reference] = task.name
    weights = {by_reference[r]: w for r, w in config.weights.items()}
    evaluate = list(dict.fromkeys(by_reference[r] for r in config.evaluate))
    return Mixture(config.name, weights, evaluate, tasks)


def single_task_mixture(task: TaskConfig) -> Mixture:
    """A mixture that trains and evaluates one task alone (the reference's single-task configs)."""
    return Mixture(task.name, {task.name: 1.0}, [task.name], {task.name: task})


def mixture_weights(mixture: Mixture) -> dict[str, float]:
    """Normalised task weights: a number is a relative weight; ``by_shards`` is the task's share of all
    train shards in the mixture. Both kinds are then normalised together."""
    shards = {t: len(mixture.tasks[t].dataset.shards("train")) for t in mixture.weights}
    total_shards = sum(shards.values())
    raw = {t: shards[t] / total_shards if w == "by_shards" else float(w) for t, w in mixture.weights.items()}
    total = sum(raw.values())
    return {t: w / total for t, w in raw.items()}


def resolve_tasks(names: str) -> list[TaskConfig]:
    """``"a,b"`` of task or mixture names (or YAML paths) -> the tasks, mixtures expanded, in order.

    A YAML path is a task or a mixture by its content; a name is a task first, else a mixture.
    """
    tasks: dict[str, TaskConfig] = {}
    for name in (n.strip() for n in names.split(",") if n.strip()):
        path = find_config("tasks", name)
        if path is None or config_kind(path) == "mixtures":
            path = find_config("mixtures", name) if path is None else path
            if path is None:
                resolve_config_path("tasks", name)  # raises, with the names that exist
            for task in load_mixture(str(path)).tasks.values():
                tasks.setdefault(task.name, task)
        else:
            task = load_task(str(path))
            tasks.setdefault(task.name, task)
    if not tasks:
        raise ConfigError("no tasks given: pass task or mixture names, e.g. --tasks demo")
    return list(tasks.values())


@dataclass(frozen=True)
class SampleTargets:
    """The (clip, text) targets of one sample and what was left out, by reason."""

    texts: list[str]
    unusable: int = 0  # label values that are not text: mappings, or lists inside a list
    filtered: int = 0  # texts the reference's filter drops


def targets(meta: dict, keys: list[str]) -> SampleTargets:
    """The targets of one sample: the first key with a value wins, then the fallbacks.

    Label values, one behaviour each, as the reference system reads them (docs/tasks.md):
    - a string is one target, the empty string included (the reference's `[""]` is a non-empty list,
      so it ends its key search and its filter keeps it); a number or bool becomes its string
      (``7`` -> ``"7"``);
    - a non-empty list gives one target per element; an empty string inside it is an empty
      target (the reference scores it so); a mapping or list inside it is unusable and counted;
    - None, an empty list or a mapping: no value, the next key is tried.
    """
    for key in [*keys, *FALLBACK_LABEL_KEYS]:
        value = meta.get(key)
        if isinstance(value, list) and value:
            texts = [as_text(v) for v in value if is_scalar(v)]
            return SampleTargets(texts, unusable=len(value) - len(texts))
        if is_scalar(value):
            return SampleTargets([as_text(value)])
    return SampleTargets([])


def is_scalar(value: object) -> bool:
    return isinstance(value, str | bool | int | float)


def as_text(value: str | bool | int | float) -> str:
    return value if isinstance(value, str) else str(value)


@lru_cache(maxsize=1 << 16)  # labels repeat across a task's clips: 289 k NSynth clips, 11 texts
def filter_reason(text: str) -> str | None:
    """Why the reference system drops a target text, or None when it keeps it.

    The reference drops texts with more than 3 combining accents (U+0301..U+036F), texts that are
    more than half non-alphanumeric (spaces count as non-alphanumeric), and texts longer than 10
    characters built from fewer than 4 distinct characters.
    """
    if sum(1 for c in text if COMBINING_FIRST <= ord(c) <= COMBINING_LAST) > MAX_COMBINING_MARKS:
        return "combining marks"
    if sum(1 for c in text if not c.isalnum()) > len(text) / 2:
        return "mostly non-alphanumeric"
    if len(text) > REPETITIVE_MIN_LENGTH and len(set(text)) < REPETITIVE_MIN_DISTINCT:
        return "repetitive"
    return None
