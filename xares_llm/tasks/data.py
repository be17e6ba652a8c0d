"""A task's split of the feature store and its (clip, target) pairs: what training and evaluation read.

Both stages open a split here, so they agree on which clips a task has, how labels become
targets (`TaskConfig.split_targets`) and what was left out; the counts travel into `run.json`
and `scores.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xares_llm.audio.sample_json import SampleJsonError, parse_sample_json
from xares_llm.cache import FeatureSplit
from xares_llm.errors import StoreError
from xares_llm.tasks.schema import Split, TaskConfig

# Drop reasons (xares_llm/extract/decode.py `DropReason`) of samples that are not test clips: the
# reference's decoder warns and moves on, and it filters empty audio, so they are not in its
# denominator. Every other dropped sample with a known target (encoder failure, non-finite frames)
# is scored as a wrong answer: the reference has no such case, and a drop must never raise a score.
NOT_CLIPS = ("undecodable", "empty audio")


@dataclass
class TargetCounts:
    """What became of one task split's clips and label values."""

    clips: int = 0  # clips in the store
    targets: int = 0  # (clip, text) targets kept
    filtered: int = 0  # target texts the reference's filter drops
    unusable: int = 0  # label values that are not text (a mapping or a list inside a list)
    unlabelled: int = 0  # clips left without any target
    dropped: int = 0  # source samples extraction could not use (the parts' `dropped` attrs)
    dropped_scored: int = 0  # of those, clips whose labels are known: scored as empty predictions
    left_out: dict[str, int] = field(default_factory=dict)  # the others, by reason: in no denominator

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DroppedClip:
    """A clip that extraction dropped but whose targets are known: evaluation scores it as empty."""

    key: str
    targets: list[str]
    reason: str


@dataclass
class TaskSplit:
    """One task's clips in one split of the store, as (clip, target) pairs in store order."""

    task: TaskConfig
    store: FeatureSplit
    clip_index: np.ndarray  # (n_pairs,) int64 clip index in the store
    targets: list[str]  # (n_pairs,) the target text of each pair
    counts: TargetCounts
    dropped: list[DroppedClip] = field(default_factory=list)  # labelled clips extraction could not use

    def references(self) -> dict[int, list[str]]:
        """Clip index -> its target texts, for clips with at least one target, in store order."""
        grouped: dict[int, list[str]] = {}
        for index, text in zip(self.clip_index.tolist(), self.targets, strict=True):
            grouped.setdefault(index, []).append(text)
        return grouped


def extract_hint(encoder: str, tasks: list[str], split: str) -> str:
    return f"xares extract {encoder} --tasks {','.join(tasks)} --split {split}"


def open_splits(
    cache_root: Path | str, encoder_id: str, tasks: list[TaskConfig], split: Split, encoder_spec: str | None = None
) -> list[TaskSplit]:
    """Open each task's store for `split`; missing parts name themselves and the command that creates them."""
    stores, missing = [], {}
    for task in tasks:
        shards = task.dataset.shards(split)
        store = FeatureSplit(cache_root, encoder_id, task.dataset.name, split, shards)
        expected = len(shards)
        if len(store.parts) < expected:
            missing[task.name] = f"{task.name}: {store.directory} has {len(store.parts)} of {expected} parts"
        stores.append(store)
    if missing:
        hint = extract_hint(encoder_spec or encoder_id, list(missing), split)
        lines = "\n  ".join(missing.values())
        raise StoreError(f"feature store incomplete:\n  {lines}\ncreate it with: {hint}")
    return [read_targets(task, store, split) for task, store in zip(tasks, stores, strict=True)]


def stored_meta(store: FeatureSplit, index: int, text: str) -> dict:
    """Clip `index`'s stored json `text`; a store from elsewhere may hold anything, refused in one line."""
    try:
        return parse_sample_json(text)
    except SampleJsonError as e:
        raise StoreError(f"{store.directory}: clip {store.key(index)!r}: its stored json is unusable ({e})") from e


def dropped_meta(part: Path, entry: dict) -> dict:
    """A dropped clip's json from the part's attributes, checked like a stored clip's."""
    try:
        return parse_sample_json(str(entry["meta"]))
    except SampleJsonError as e:
        raise StoreError(f"{part}: dropped clip {str(entry.get('key'))[:80]!r}: its json is unusable ({e})") from e


def read_targets(task: TaskConfig, store: FeatureSplit, split: Split) -> TaskSplit:
    """Every (clip, target) pair of `task` in `store`, with the counts of what was left out."""
    counts = TargetCounts(clips=len(store))
    clip_index, texts = [], []
    for index, text in enumerate(store.iter_meta_text()):
        found = task.split_targets(stored_meta(store, index, text), split)
        counts.filtered += found.filtered
        counts.unusable += found.unusable
        if not found.texts:
            counts.unlabelled += 1
        clip_index += [index] * len(found.texts)
        texts += found.texts
    counts.targets = len(texts)
    if not texts:
        keys = task.labels.keys(split)
        raise StoreError(f"task {task.name}: no clip in {store.directory} has a target under keys {keys}")
    dropped = []
    for part, attrs in zip(store.parts, store.part_attrs, strict=True):  # attrs read once, when the store opened
        for entry in attrs.dropped:
            counts.dropped += 1
            reason = entry["reason"]
            found = task.split_targets(dropped_meta(part, entry), split) if "meta" in entry else None
            if found is not None and found.texts and reason not in NOT_CLIPS:
                dropped.append(DroppedClip(entry["key"], found.texts, reason))
            else:
                counts.left_out[reason] = counts.left_out.get(reason, 0) + 1
    counts.dropped_scored = len(dropped)
    return TaskSplit(task, store, np.array(clip_index, dtype=np.int64), texts, counts, dropped)
