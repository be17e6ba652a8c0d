"""The report's figures as PNG files (matplotlib's object API, no pyplot: no display, no global state).

- scores per track: grouped bars (one bar per run) with interval whiskers and baseline markers;
- each run's training loss, smoothed, and per task when the log records per-task losses;
- per classification task, the confusion matrix of its most frequent classes;
- per transcription task, the error rate by reference length bucket.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xares_llm.cache.atomic import atomic_file
from xares_llm.metrics import norm
from xares_llm.report.load import ResultDir
from xares_llm.report.tables import Report

CONFUSION_CLASSES = 10  # the most frequent reference classes shown; the rest are pooled as "other"
LENGTH_BUCKETS = 5
SMOOTHING = 0.9  # exponential moving average of the loss curve (TensorBoard's default smoothing is 0.6-0.9)
DPI = 100


@dataclass
class Chart:
    title: str
    path: Path


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, path: Path, title: str) -> Chart:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=DPI, facecolor="white")
    return Chart(title, path)


def score_bars(report: Report, out_dir: Path) -> list[Chart]:
    """One PNG per track: tasks on x, a bar per run with its 95 % interval, baselines as markers."""
    charts = []
    tracks = dict.fromkeys(r.track for r in report.rows if r.kind == "task")
    for track in tracks:
        rows = [r for r in report.rows if r.kind == "task" and r.track == track]
        fig = _figure(max(5.0, 1.0 + 0.9 * len(rows)), 4.0)
        ax = fig.add_subplot()
        x = np.arange(len(rows))
        width = 0.8 / len(report.labels)
        for i, label in enumerate(report.labels):
            cells = [r.cells[i] for r in rows]
            scores = np.array([c.score if c else np.nan for c in cells])
            low = np.array([c.score - c.low if c and c.has_interval else 0 for c in cells])
            high = np.array([c.high - c.score if c and c.has_interval else 0 for c in cells])
            offset = (i - (len(report.labels) - 1) / 2) * width
            ax.bar(x + offset, scores, width, yerr=[low, high], capsize=3, label=label)
        for j, name in enumerate(report.baseline_names):
            values = [r.baselines.get(name) for r in rows]
            marked = [(k, v) for k, v in enumerate(values) if v is not None]
            if marked:
                ax.scatter(*zip(*marked, strict=True), marker="_^v"[j % 3], s=120, color="k", zorder=3, label=name)
        ax.set_xticks(x, [r.label for r in rows], rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("score")
        ax.set_title(f"Track {track}: scores with 95 % bootstrap intervals")
        ax.legend(fontsize="small")
        charts.append(_save(fig, out_dir / f"scores_{track}.png", f"Track {track} scores"))
    return charts


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """Debiased exponential moving average, so the first points are not pulled towards 0."""
    out = np.empty(len(values))
    mean = 0.0
    for i, v in enumerate(values):
        mean = weight * mean + (1 - weight) * v
        out[i] = mean / (1 - weight ** (i + 1))
    return out


def loss_curve(result: ResultDir, out_dir: Path, index: int) -> Chart | None:
    """Training loss against step (raw faint, smoothed bold), one line per task when logged."""
    entries = [e for e in result.log if isinstance(e.get("loss"), int | float)]
    if len(entries) < 2:
        return None
    fig = _figure(6.0, 3.5)
    ax = fig.add_subplot()
    steps = np.array([e["step"] for e in entries])
    loss = np.array([e["loss"] for e in entries], dtype=float)
    ax.plot(steps, loss, alpha=0.25, color="C0")
    ax.plot(steps, smooth(loss), color="C0", label="loss (all tasks)")
    tasks = sorted({t for e in result.log for t in (e.get("task_loss") or {})})
    for k, task in enumerate(tasks):
        points = [(e["step"], e["task_loss"][task]) for e in result.log if task in (e.get("task_loss") or {})]
        if len(points) > 1:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, smooth(np.array(ys, dtype=float)), color=f"C{k + 1}", label=task, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"{result.label}: training loss (EMA {SMOOTHING})")
    ax.legend(fontsize="small")
    return _save(fig, out_dir / f"loss_{index}.png", f"{result.label}: training loss")


def natural_order(name: str) -> list:
    """Digits compare as numbers: ``class 2`` before ``class 10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def confusion(result: ResultDir, task: str, out_dir: Path, index: int) -> Chart | None:
    """Rows: true class (the most frequent ones); columns: predicted; each row normalised to 1."""
    rows = result.tasks[task].rows
    pairs = [(norm(ref), norm(r["prediction"])) for r in rows for ref in r["references"]]
    if not pairs:
        return None
    frequent = [c for c, _ in Counter(t for t, _ in pairs).most_common(CONFUSION_CLASSES)]
    classes = sorted(frequent, key=natural_order)  # the most frequent classes, read in order (2 before 10)
    others = len({t for t, _ in pairs}) > len(classes) or any(p not in classes for _, p in pairs)
    names = classes + (["other"] if others else [])
    position = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(names)))
    for truth, pred in pairs:
        if truth in position:
            matrix[position[truth], position.get(pred, len(names) - 1)] += 1
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.45 * len(names)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), [n[:18] for n in names], rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(classes)), [n[:18] for n in classes], fontsize="small")
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(f"{result.label}: {task}")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the reference class")
    return _save(fig, out_dir / f"confusion_{index}_{task}.png", f"{result.label}: {task} confusion")


def error_by_length(result: ResultDir, task: str, records: list[dict], out_dir: Path, index: int) -> Chart | None:
    """Corpus error rate (edits / reference units) within buckets of reference length."""
    units = np.array([r["reference_units"] for r in records], dtype=float)
    edits = np.array([r["substitutions"] + r["deletions"] + r["insertions"] for r in records], dtype=float)
    if len(units) == 0 or units.max() <= 0:
        return None
    edges = np.unique(np.quantile(units, np.linspace(0, 1, LENGTH_BUCKETS + 1)).round())
    if len(edges) < 2:
        edges = np.array([units.min(), units.max() + 1])
    bucket = np.clip(np.searchsorted(edges, units, side="right") - 1, 0, len(edges) - 2)
    labels, rates, counts = [], [], []
    for b in range(len(edges) - 1):
        chosen = bucket == b
        if chosen.any():
            low, high = int(edges[b]), int(edges[b + 1]) - (b < len(edges) - 2)  # [low, next edge), the last closed
            labels.append(f"{low}-{high}" if high > low else str(low))
            rates.append(edits[chosen].sum() / max(units[chosen].sum(), 1))
            counts.append(int(chosen.sum()))
    unit = records[0].get("unit", "word")
    fig = _figure(5.5, 3.5)
    ax = fig.add_subplot()
    bars = ax.bar(labels, rates, color="C3")
    ax.bar_label(bars, [f"n={n}" for n in counts], fontsize="small")
    ax.set_xlabel(f"reference length ({unit}s)")
    ax.set_ylabel("error rate (WER)" if unit == "word" else "error rate (CER)")
    ax.set_title(f"{result.label}: {task} error rate by length")
    return _save(fig, out_dir / f"length_{index}_{task}.png", f"{result.label}: {task} error by length")


def all_charts(report: Report, results: list[ResultDir], out_dir: Path) -> list[Chart]:
    """Every figure the report has data for, in display order."""
    charts = score_bars(report, out_dir)
    for i, result in enumerate(results):
        chart = loss_curve(result, out_dir, i)
        charts += [chart] if chart else []
    for i, result in enumerate(results):
        for task, entry in result.tasks.items():
            if not entry.rows:
                continue
            if entry.metric == "accuracy":
                chart = confusion(result, task, out_dir, i)
            elif entry.metric in ("iwer", "icer") and (i, task) in report.stats:
                chart = error_by_length(result, task, report.stats[i, task].records, out_dir, i)
            else:
                chart = None
            charts += [chart] if chart else []
    return charts
