"""Probe every task of a store: pool once, train each head that fits the task's labels, write and score.

A task that cannot be probed (no train split in the store, labels no requested head fits, a metric
without a probe, a metric that fails) is reported in one line under `skipped`; the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from xares_llm.cache import read_encoder_info
from xares_llm.devices import resolve_device
from xares_llm.errors import StoreError, XaresError
from xares_llm.metrics import MetricOptions, compute_metric
from xares_llm.probe.captioning import nearest_captions
from xares_llm.probe.classify import class_data, knn, train_dense
from xares_llm.probe.ctc import train_ctc
from xares_llm.probe.embeddings import POOLINGS, pooled_split
from xares_llm.probe.outputs import (
    HEADS,
    HeadScore,
    ProbeResults,
    TaskProbe,
    write_head_predictions,
    write_results,
)
from xares_llm.provenance import software_versions
from xares_llm.tasks.data import TaskSplit, open_splits
from xares_llm.tasks.schema import Split, TaskConfig

FAMILIES = {
    "accuracy": "classification",
    "map": "classification",
    "iwer": "asr",
    "icer": "asr",
    "fense": "captioning",
    "date": "captioning",
}
FAMILY_HEADS = {"classification": ("linear", "mlp", "knn"), "asr": ("ctc",), "captioning": ("knn",)}


class ProbeError(XaresError):
    """One task cannot be probed; the message names the task and what is missing."""


@dataclass
class ProbeOptions:
    heads: tuple[str, ...] = HEADS
    pooling: str = "mean"
    seed: int = 0
    device: str | None = None  # None/auto: cuda when available
    metric_options: MetricOptions | None = None  # FENSE/DATE models


def probe(
    cache_root: Path | str,
    encoder_id: str,
    encoder_spec: str,
    tasks: list[TaskConfig],
    out_dir: Path,
    options: ProbeOptions,
    report: Callable[[str], None] | None = None,
) -> ProbeResults:
    """Probe `tasks` from the store of `encoder_id`; writes `<out>/probe_scores.json` and the predictions."""
    if options.pooling not in POOLINGS:
        raise XaresError(f"--pooling must be one of {', '.join(POOLINGS)}, got {options.pooling!r}")
    device = resolve_device(options.device)
    info = read_encoder_info(cache_root, encoder_id)
    if info is None:
        raise StoreError(f"no feature store {encoder_id} in {cache_root}")
    results = ProbeResults(
        encoder_id, encoder_spec, options.seed, str(device), options.pooling, list(options.heads), software_versions()
    )
    started = time.perf_counter()
    for task in tasks:
        try:
            results.tasks[task.name] = probe_task(
                task, cache_root, encoder_id, encoder_spec, info.frame_rate_hz, out_dir, options, device, report
            )
        except XaresError as e:
            results.skipped[task.name] = " ".join(str(e).split())
            if report:
                report(f"skipped {results.skipped[task.name]}")
    results.wall_seconds = time.perf_counter() - started
    write_results(out_dir, results)
    return results


def open_split(task: TaskConfig, cache_root: Path | str, encoder_id: str, spec: str, split: Split) -> TaskSplit:
    try:
        return open_splits(cache_root, encoder_id, [task], split, spec)[0]
    except StoreError as e:
        raise ProbeError(f"task {task.name}: no usable {split} split in the store: {' '.join(str(e).split())}") from e


def probe_task(
    task: TaskConfig,
    cache_root: Path | str,
    encoder_id: str,
    spec: str,
    frame_rate_hz: float,
    out_dir: Path,
    options: ProbeOptions,
    device: torch.device,
    report: Callable[[str], None] | None,
) -> TaskProbe:
    started = time.perf_counter()
    family = FAMILIES.get(task.metric.name)
    if family is None:
        raise ProbeError(f"task {task.name}: metric {task.metric.name!r} has no probe (probed: {', '.join(FAMILIES)})")
    heads = [h for h in options.heads if h in FAMILY_HEADS[family]]
    if not heads:
        raise ProbeError(
            f"task {task.name}: {family} labels fit none of --heads {','.join(options.heads)}; "
            f"it is probed with {', '.join(FAMILY_HEADS[family])}"
        )
    train, test = (open_split(task, cache_root, encoder_id, spec, s) for s in ("train", "test"))
    pooled = {
        name: pooled_split(cache_root, encoder_id, task.dataset.name, name, split.store)
        for name, split in (("train", train), ("test", test))
    }
    train_refs, test_refs = train.references(), test.references()
    train_clips, test_clips = list(train_refs), list(test_refs)
    train_x = pooled["train"].embeddings(options.pooling)[train_clips]
    test_x = pooled["test"].embeddings(options.pooling)[test_clips]
    references = [test_refs[c] for c in test_clips]
    probe_result = TaskProbe(
        task.name,
        task.track,
        family,
        task.metric.name,
        n_train=len(train_clips),
        n_test=len(test_clips),
        train_targets=train.counts.to_dict(),
        test_targets=test.counts.to_dict(),
        embeddings={"pooling": options.pooling} | {s: p.counts() for s, p in pooled.items()},
    )

    def score(predictions: list[str], refs: list[list[str]]) -> float:
        return compute_metric(task.metric.name, predictions, refs, task.metric.args).score

    if family == "classification":
        data = class_data(
            train_x, [train_refs[c] for c in train_clips], test_x, task.metric.name == "map", options.seed
        )
        _, unseen = data.labels.encode(references)
        probe_result.train_targets |= data.counts  # the fitting and held-out slices
        probe_result.test_targets |= {"labels_unseen_in_train": unseen}
    for head in heads:
        head_started = time.perf_counter()
        if report:
            report(f"{task.name}: {head}")
        if family == "classification" and head == "knn":
            predictions, hp = knn(data, score, device)
        elif family == "classification":
            predictions, hp = train_dense(head, data, score, options.seed, device)
        elif family == "asr":
            pairs = (train.clip_index, train.targets)
            stats = pooled["train"].stats
            predictions, hp = train_ctc(
                train.store, pairs, test.store, test_clips, stats, frame_rate_hz, options.seed, device
            )
        else:
            captions = [train_refs[c] for c in train_clips]
            predictions, hp = nearest_captions(train_x, captions, test_x, device)
        rows = [
            {"task": task.name, "key": test.store.key(c), "prediction": p, "references": r}
            for c, p, r in zip(test_clips, predictions, references, strict=True)
        ]
        write_head_predictions(out_dir, head, task, rows, test.counts.to_dict())
        result = compute_metric(task.metric.name, predictions, references, task.metric.args, options.metric_options)
        wall = time.perf_counter() - head_started
        probe_result.heads[head] = HeadScore(float(result.score), task.metric.name, result.settings, hp, wall)
    probe_result.wall_seconds = time.perf_counter() - started
    return probe_result
