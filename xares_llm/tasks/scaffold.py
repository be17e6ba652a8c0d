"""`xares tasks new`: a task config from local WebDataset shards, with the label key and metric guessed.

Reads only the ``.json`` members of the shards (audio is skipped), counts shards and clips, and
guesses the metric from the label values: several labels joined by ``;`` -> ``map`` with the class
count; one label from a small set -> ``accuracy``; free text -> ``iwer``.
"""

from __future__ import annotations

import glob
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from xares_llm.audio.sample_json import SampleJsonError, parse_sample_json
from xares_llm.cache.atomic import atomic_write_text
from xares_llm.config import validate
from xares_llm.errors import ConfigError, DataError
from xares_llm.metrics import metric_names
from xares_llm.tasks.schema import MixtureConfig, TaskConfig, targets

EXAMPLE_SAMPLES = 5  # samples whose json keys are shown when no label key is given
MAX_CLASSES = 1000  # more distinct single labels than this is free text, not a class set
MAX_CLASS_RATIO = 0.5  # nor is a label set where most clips have their own label
MULTI_LABEL_SEPARATOR = ";"


@dataclass
class ShardSurvey:
    """What the json members of one split's shards hold."""

    shards: list[str]
    clips: int = 0
    keys: Counter = field(default_factory=Counter)  # json key -> samples that have it
    examples: dict[str, object] = field(default_factory=dict)  # json key -> its first value
    labels: list[str] = field(default_factory=list)  # label texts under the chosen key
    dropped: Counter = field(default_factory=Counter)  # why samples whose json is unusable were left out


def expand_shards(pattern: str, option: str) -> list[str]:
    """A glob (or a plain path) -> the sorted absolute shard paths; none found is an error."""
    paths = sorted(str(Path(p).resolve()) for p in glob.glob(str(Path(pattern).expanduser())))
    if not paths:
        raise ConfigError(f"{option} {pattern!r} matches no file")
    return paths


def survey(shards: list[str], label_key: str | None) -> ShardSurvey:
    found = ShardSurvey(shards)
    for shard in shards:
        for meta in json_members(shard):
            if isinstance(meta, SampleJsonError):
                found.dropped[str(meta)] += 1
                continue
            found.clips += 1
            found.keys.update(meta.keys())
            for key, value in meta.items():
                found.examples.setdefault(key, value)
            if label_key is not None:
                found.labels += targets(meta, [label_key]).texts
    return found


def json_members(shard: str) -> Iterator[dict | SampleJsonError]:
    """Each sample's parsed json in tar order, or why it is unusable; audio members are skipped unread."""
    try:
        with tarfile.open(shard, "r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".json"):
                    try:
                        yield parse_sample_json(tar.extractfile(member).read())
                    except SampleJsonError as e:
                        yield e
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read {shard}: {type(e).__name__}: {e}") from e


def describe_keys(found: ShardSurvey) -> str:
    lines = [
        f"  {key} ({count} of {found.clips} samples), e.g. {found.examples[key]!r}"[:160]
        for key, count in found.keys.most_common()
    ]
    return "\n".join(lines)


def guess_metric(labels: list[str]) -> tuple[str, dict]:
    """The metric the labels call for, and its arguments."""
    if any(MULTI_LABEL_SEPARATOR in label for label in labels):
        classes = {part for label in labels for part in label.split(MULTI_LABEL_SEPARATOR) if part}
        return "map", {"num_classes": len(classes)}
    distinct = len(set(labels))
    if distinct <= MAX_CLASSES and distinct <= MAX_CLASS_RATIO * len(labels):
        return "accuracy", {}
    return "iwer", {}


def new_task(
    name: str,
    train: str,
    test: str,
    label_key: str | None = None,
    metric: str | None = None,
    prompt: str | None = None,
) -> tuple[TaskConfig, ShardSurvey, ShardSurvey]:
    """A validated task config for local shards; without `label_key`, an error listing the json keys."""
    train_shards, test_shards = expand_shards(train, "--train"), expand_shards(test, "--test")
    train_survey = survey(train_shards, label_key)
    if label_key is None:
        raise ConfigError(
            f"choose the label with --label-key; the json of {train} holds:\n{describe_keys(train_survey)}"
        )
    if not train_survey.labels:
        raise ConfigError(f"no sample of {train} has a value under {label_key!r}; keys:\n{describe_keys(train_survey)}")
    test_survey = survey(test_shards, label_key)
    if metric is not None and metric not in metric_names():
        raise ConfigError(f"--metric {metric!r} is unknown; allowed: {', '.join(metric_names())}")
    name_guess, args = guess_metric(train_survey.labels + test_survey.labels)
    chosen = metric or name_guess
    data = {
        "name": name,
        "track": "user",
        "version": 1,
        "dataset": {"name": name, "repo": None, "train": train_shards, "test": test_shards},
        "labels": {"train": label_key, "test": label_key},
        "prompt": prompt or f"What is the {label_key.replace('_', ' ')}?",
        "metric": {"name": chosen, "args": args if chosen == name_guess else {}},
    }
    return validate(TaskConfig, data, f"task {name}"), train_survey, test_survey


def write_task(task: TaskConfig, out: Path) -> Path:
    """Write the task YAML and a one-task mixture beside it (``<stem>_mix.yaml``); returns the mixture path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    mixture = MixtureConfig(name=f"{task.name}_mix", weights={out.name: 1.0}, evaluate=[out.name])
    mixture_path = out.with_name(f"{out.stem}_mix.yaml")
    atomic_write_text(mixture_path, yaml.safe_dump(mixture.model_dump(mode="json"), sort_keys=False))
    return mixture_path
