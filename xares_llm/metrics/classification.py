"""Closed-set metrics of Track A: accuracy and multi-label mAP, with the reference semantics (docs/tasks.md).

Each also returns its per-clip form (`SampleStats`): accuracy's hits and pairs per clip, and mAP's
per-pair label matrices, from which every resample recomputes the per-class counts and so the mAP.
"""

from __future__ import annotations

import numpy as np

from xares_llm.metrics.base import (
    MetricError,
    MetricResult,
    SampleStats,
    Scorer,
    expand_pairs,
    pair_owners,
    ratio_stats,
)
from xares_llm.metrics.text import norm

LABEL_SEPARATOR = ";"  # multi-label answers and references join their labels with this
MAP_CHUNK = 64  # resamples per matrix product in the mAP scorer (bounds memory at 64 x pairs floats)


def accuracy(predictions: list[str], references: list[list[str]]) -> MetricResult:
    """Fraction of (prediction, reference) pairs that are equal after `norm`; per clip, its hits and pairs."""
    hits = np.array([sum(norm(p) == norm(r) for r in refs) for p, refs in zip(predictions, references, strict=True)])
    pairs = np.array([len(refs) for refs in references])
    records = [{"correct": float(h / n), "hits": int(h), "pairs": int(n)} for h, n in zip(hits, pairs, strict=True)]
    n_pairs = int(pairs.sum())
    return MetricResult(
        score=int(hits.sum()) / n_pairs,
        settings={"normalize": "norm", "pairs": n_pairs},
        stats=ratio_stats("accuracy", records, hits, pairs),
    )


def _labels(text: str) -> list[str]:
    # The reference splits without stripping, so "dog; cat" yields " cat", which matches no reference
    # label written "cat" and is dropped: a reproduced reference behaviour, not an accident.
    return norm(text, remove_punctuation=False).split(LABEL_SEPARATOR)


def binary_average_precision(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-class AP of 0/1 predictions, equal to scikit-learn's `average_precision_score` on them.

    Its precision-recall curve then has two thresholds, 1 and 0, so AP = precision * recall +
    prevalence * (1 - recall); a class without positives scores 0 (recall is undefined there).
    Closed form: the same number without importing scikit-learn (seconds of `xares probe`).
    """
    true_positives = (y_true * y_pred).sum(axis=0)
    predicted, positives = y_pred.sum(axis=0), y_true.sum(axis=0)
    zeros = np.zeros(y_true.shape[1], dtype=np.float64)
    recall = np.divide(true_positives, positives, out=zeros.copy(), where=positives > 0)
    precision = np.divide(true_positives, predicted, out=zeros.copy(), where=predicted > 0)
    prevalence = positives / max(len(y_true), 1)
    return np.where(positives > 0, precision * recall + prevalence * (1 - recall), 0.0)


def mean_average_precision(predictions: list[str], references: list[list[str]], num_classes: int) -> MetricResult:
    """Macro average precision of binary label matrices, as scikit-learn computes it.

    Vocabulary = the set of reference labels; predicted labels outside it are dropped; the matrices
    have `num_classes` columns, so columns beyond the vocabulary stay all-zero and score AP 0, which
    lowers the mean exactly as in the reference. With 0/1 scores a class's AP is
    precision * recall + prevalence * (1 - recall).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise MetricError(f"map: num_classes must be a positive integer, got {num_classes!r}")
    preds, refs = expand_pairs(predictions, references)
    true_labels = [_labels(r) for r in refs]
    vocabulary = sorted({label for labels in true_labels for label in labels})
    if len(vocabulary) > num_classes:
        raise MetricError(
            f"map: the references hold {len(vocabulary)} distinct labels but num_classes is {num_classes}; "
            "raise num_classes in the task config"
        )
    column = {label: i for i, label in enumerate(vocabulary)}
    y_true = np.zeros((len(refs), num_classes), dtype=np.int64)
    y_pred = np.zeros((len(refs), num_classes), dtype=np.int64)
    for i, (pred, labels) in enumerate(zip(preds, true_labels, strict=True)):
        y_true[i, [column[label] for label in labels]] = 1
        y_pred[i, [column[label] for label in _labels(pred) if label in column]] = 1
    score = float(binary_average_precision(y_true, y_pred).mean())
    settings = {
        "normalize": "norm(remove_punctuation=False)",
        "num_classes": num_classes,
        "vocabulary_size": len(vocabulary),
        "pairs": len(preds),
    }
    stats = _map_stats(predictions, references, y_true[:, : len(column)], y_pred[:, : len(column)], column, num_classes)
    return MetricResult(score=score, settings=settings, stats=stats)


def _map_stats(
    predictions: list[str],
    references: list[list[str]],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    column: dict[str, int],
    num_classes: int,
) -> SampleStats:
    """Per clip: true and false positives and false negatives over its pairs, and labels outside the vocabulary."""
    owner = pair_owners(references)
    both = y_true * y_pred
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
    arrays = {
        "owner": owner,
        "y_true": y_true.astype(np.bool_),
        "y_pred": y_pred.astype(np.bool_),
        "num_classes": np.array(num_classes),
    }
    return SampleStats("map", records, map_scorer(arrays), "map", arrays)


def map_scorer(arrays: dict[str, np.ndarray]) -> Scorer:
    """mAP of each resample from per-class counts over the resampled pairs.

    With 0/1 scores a class's AP is precision * recall + prevalence * (1 - recall), and 0 for a class
    with no positive; classes absent from a resample score 0 there, exactly as the metric would.
    """
    owner, num_classes = arrays["owner"], int(arrays["num_classes"])
    y_true, y_pred = arrays["y_true"].astype(np.float32), arrays["y_pred"].astype(np.float32)
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

    return scorer
