"""Per-sample results: what each test clip contributed to its task's score, and the score of any resample.

`sample_stats` turns one task's predictions into

- ``records``: one dict per clip with what the metric saw for it (correct pairs, labels matched and
  missed, WER edits, FENSE or DATE terms); `xares score` writes them to ``per_sample/<task>.jsonl``
  beside key, prediction and references, so errors can be read and sliced by metadata;
- ``scorer``: the task metric recomputed from per-clip quantities for a batch of resamples, given as
  clip multiplicities ``W [R, N]`` -> scores ``[R]``. With ``W = 1`` it equals the metric (the tests
  hold it to `compute_metric`). Corpus-level metrics are recomputed as a whole on each resample:
  mAP from per-class counts, iWER/iCER from summed edits, DATE's discrimination term from which
  other samples' references each candidate matches (see `xares_llm.scoring.per_sample_captions`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xares_llm.metrics import MetricOptions, norm
from xares_llm.metrics.base import SampleStats, check_inputs
from xares_llm.scoring.predictions import PREDICTIONS_DIR, read_predictions

PER_SAMPLE_DIR = "per_sample"
MAP_CHUNK = 64  # resamples per matrix product in the mAP scorer (bounds memory at 64 x pairs floats)

PER_SAMPLE_METRICS = ("accuracy", "map", "iwer", "icer", "fense", "date")


def sample_stats(
    metric: str,
    predictions: list[str],
    references: list[list[str]],
    args: dict | None = None,
    options: MetricOptions | None = None,
) -> SampleStats:
    """Per-clip records and resample scorer of `metric` (a name from the task config) on these samples."""
    check_inputs(predictions, references)
    args = dict(args or {})
    if metric == "accuracy":
        return _accuracy(predictions, references)
    if metric == "map":
        return _mean_average_precision(predictions, references, int(args["num_classes"]))
    if metric in ("iwer", "icer"):
        return _edit_rate(metric, predictions, references)
    from xares_llm.scoring.per_sample_captions import date_stats, fense_stats

    if metric == "fense":
        return fense_stats(predictions, references, options)
    if metric == "date":
        return date_stats(predictions, references, options=options, **args)
    raise KeyError(f"no per-sample form for metric {metric!r}")


def _accuracy(predictions: list[str], references: list[list[str]]) -> SampleStats:
    hits = np.array([sum(norm(p) == norm(r) for r in refs) for p, refs in zip(predictions, references, strict=True)])
    pairs = np.array([len(refs) for refs in references])
    records = [{"correct": float(h / n), "hits": int(h), "pairs": int(n)} for h, n in zip(hits, pairs, strict=True)]
    return SampleStats("accuracy", records, lambda w: (w @ hits) / (w @ pairs))


def _mean_average_precision(predictions: list[str], references: list[list[str]], num_classes: int) -> SampleStats:
    """Binary label matrices over (prediction, reference) pairs, as `metrics.classification` builds them.

    With 0/1 scores a class's AP is precision * recall + prevalence * (1 - recall), and 0 for a class
    with no positive; classes absent from a resample score 0 there, exactly as the metric would.
    """
    from xares_llm.metrics.classification import _labels

    owner = np.array([i for i, refs in enumerate(references) for _ in refs])
    preds = [_labels(predictions[i]) for i in owner]
    truths = [_labels(r) for refs in references for r in refs]
    vocabulary = sorted({label for labels in truths for label in labels})
    column = {label: i for i, label in enumerate(vocabulary)}
    y_true = np.zeros((len(owner), len(vocabulary)), dtype=np.float32)
    y_pred = np.zeros_like(y_true)
    for row, (pred, labels) in enumerate(zip(preds, truths, strict=True)):
        y_true[row, [column[label] for label in labels]] = 1
        y_pred[row, [column[label] for label in pred if label in column]] = 1
    both = y_true * y_pred

    def scorer(w: np.ndarray) -> np.ndarray:
        scores = []
        for start in range(0, len(w), MAP_CHUNK):
            wp = w[start : start + MAP_CHUNK][:, owner].astype(np.float32)
            tp, pp, pos = wp @ both, wp @ y_pred, wp @ y_true
            total = wp.sum(axis=1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                recall = np.where(pos > 0, tp / pos, 0.0)
                precision = np.where(pp > 0, tp / pp, 0.0)
                ap = np.where(pos > 0, precision * recall + pos / total * (1 - recall), 0.0)
            scores.append(ap.sum(axis=1) / num_classes)
        return np.concatenate(scores)

    n = len(references)
    tp = np.bincount(owner, weights=both.sum(axis=1), minlength=n)
    fp = np.bincount(owner, weights=(y_pred - both).sum(axis=1), minlength=n)
    fn = np.bincount(owner, weights=(y_true - both).sum(axis=1), minlength=n)
    records = []
    for i in range(n):
        records.append({"true_positives": int(tp[i]), "false_positives": int(fp[i]), "false_negatives": int(fn[i])})
        dropped = sorted({label for label in _labels(predictions[i]) if label not in column})
        if dropped:
            records[-1]["labels_outside_vocabulary"] = dropped
    return SampleStats("map", records, scorer)


def _edit_rate(metric: str, predictions: list[str], references: list[list[str]]) -> SampleStats:
    """Edits per clip from one jiwer alignment of every pair; the corpus rate is summed edits / summed units."""
    import jiwer

    owner = [i for i, refs in enumerate(references) for _ in refs]
    refs = [norm(r) for rs in references for r in rs]
    hyps = [norm(predictions[i]) for i in owner]
    n = len(references)
    counts = {k: np.zeros(n) for k in ("hits", "substitutions", "deletions", "insertions")}
    hyp_nonempty = np.zeros(n)
    if any(refs):
        process = jiwer.process_words if metric == "iwer" else jiwer.process_characters
        for i, chunks in zip(owner, process(refs, hyps).alignments, strict=True):
            for chunk in chunks:
                span = chunk.ref_end_idx - chunk.ref_start_idx
                key = {"equal": "hits", "substitute": "substitutions", "delete": "deletions"}.get(chunk.type)
                if key:
                    counts[key][i] += span
                else:
                    counts["insertions"][i] += chunk.hyp_end_idx - chunk.hyp_start_idx
    for i, hyp in zip(owner, hyps, strict=True):
        hyp_nonempty[i] += bool(hyp)
    edits = counts["substitutions"] + counts["deletions"] + counts["insertions"]
    units = counts["substitutions"] + counts["deletions"] + counts["hits"]

    def scorer(w: np.ndarray) -> np.ndarray:
        total_edits, total_units = w @ edits, w @ units
        # As `metrics.asr`: a resample whose references are all empty has rate 0, or 1 if any hypothesis is not.
        empty_rate = (w @ hyp_nonempty > 0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(total_units > 0, total_edits / total_units, empty_rate)
        return np.maximum(0.0, 1.0 - rate)

    unit = "word" if metric == "iwer" else "char"
    records = []
    for i in range(n):
        record = {k: int(v[i]) for k, v in counts.items()}
        record |= {"unit": unit, "reference_units": int(units[i])}
        record["error_rate"] = float(edits[i] / units[i]) if units[i] else None
        records.append(record)
    return SampleStats(metric, records, scorer)


def per_sample_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / PER_SAMPLE_DIR / f"{task}.jsonl"


def write_task_samples(run_dir: Path, task: str, rows: list[dict], metric: str, records: list[dict]) -> Path:
    """``per_sample/<task>.jsonl``: each predictions row with its per-sample fields, written atomically.

    An unchanged file is left alone, so rescoring the same predictions rewrites nothing but the scores.
    """
    path = per_sample_path(run_dir, task)
    lines = []
    for row, record in zip(rows, records, strict=True):
        line = {"key": row.get("key"), "prediction": row["prediction"], "references": row["references"]}
        lines.append(json.dumps({**line, "metric": metric, **record}, ensure_ascii=False) + "\n")
    text = "".join(lines)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_per_sample(run_dir: Path, metrics: dict[str, tuple[str, dict]], options: MetricOptions | None) -> None:
    """Per-sample files for every scored task; `metrics` maps task -> (metric name, metric args)."""
    for task, (metric, args) in metrics.items():
        rows = read_predictions(Path(run_dir) / PREDICTIONS_DIR / f"{task}.jsonl")
        if metric in PER_SAMPLE_METRICS:
            preds, refs = [r["prediction"] for r in rows], [r["references"] for r in rows]
            records = sample_stats(metric, preds, refs, args, options).records
        else:  # a plugin metric: the rows still land here, marked as having no per-sample score
            records = [{"per_sample_score": None}] * len(rows)
        write_task_samples(run_dir, task, rows, metric, records)
