"""Closed-set metrics of Track A: accuracy and multi-label mAP, with the reference semantics (docs/tasks.md)."""

from __future__ import annotations

import numpy as np

from xares_llm.metrics.base import MetricError, MetricResult, expand_pairs
from xares_llm.metrics.text import norm

LABEL_SEPARATOR = ";"  # multi-label answers and references join their labels with this


def accuracy(predictions: list[str], references: list[list[str]]) -> MetricResult:
    """Fraction of (prediction, reference) pairs that are equal after `norm`."""
    preds, refs = expand_pairs(predictions, references)
    hits = sum(norm(p) == norm(r) for p, r in zip(preds, refs, strict=True))
    return MetricResult(score=hits / len(preds), settings={"normalize": "norm", "pairs": len(preds)})


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
    return MetricResult(score=score, settings=settings)
