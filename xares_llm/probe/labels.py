"""Closed-set labels for the classification heads: target texts <-> class indices, as the metrics read them.

Single label (accuracy): a class is a target text after `norm`, so "Dog" and "dog" are one class and
the prediction written is the first spelling seen in train. Multi-label (mAP): a target is split into
labels exactly as the metric splits it (`norm` keeping punctuation, then ';'), a clip's label set is the
union over its targets, and the prediction joins the chosen labels with ';'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xares_llm.metrics.classification import LABEL_SEPARATOR
from xares_llm.metrics.text import norm


def split_labels(text: str) -> list[str]:
    """The labels the mAP metric reads from one text (it splits without stripping)."""
    return norm(text, remove_punctuation=False).split(LABEL_SEPARATOR)


@dataclass
class ClassLabels:
    """The class vocabulary of a task's train split."""

    names: list[str]  # class index -> text a prediction writes
    multi: bool
    index: dict[str, int]  # class key (the normalised text or one label) -> class index

    @classmethod
    def from_train(cls, targets: list[str], multi: bool) -> ClassLabels:
        names: list[str] = []
        index: dict[str, int] = {}
        for text in targets:
            for key, name in _keys(text, multi):
                if key not in index:
                    index[key] = len(names)
                    names.append(name)
        return cls(names, multi, index)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, clip_targets: list[list[str]]) -> tuple[np.ndarray, int]:
        """Targets per clip -> (class ids (n,) for single label or multi-hot (n, C)), unknown labels.

        A single-label clip with several targets takes its first known one (each pair is also its own
        training example where the caller expands pairs); unknown labels are counted, never guessed.
        """
        unknown = 0
        if self.multi:
            hot = np.zeros((len(clip_targets), len(self)), dtype=np.float32)
            for row, texts in enumerate(clip_targets):
                for text in texts:
                    for key, _ in _keys(text, True):
                        if key in self.index:
                            hot[row, self.index[key]] = 1.0
                        else:
                            unknown += 1
            return hot, unknown
        ids = np.full(len(clip_targets), -1, dtype=np.int64)
        for row, texts in enumerate(clip_targets):
            known = [self.index[k] for t in texts for k, _ in _keys(t, False) if k in self.index]
            unknown += sum(1 for t in texts for k, _ in _keys(t, False) if k not in self.index)
            if known:
                ids[row] = known[0]
        return ids, unknown

    def decode_scores(self, scores: np.ndarray) -> list[str]:
        """Per-class scores (n, C) -> prediction texts: the argmax, or every class with probability
        >= 0.5 for multi-label (the argmax when none reaches it, so a clip always names a label)."""
        if not self.multi:
            return [self.names[i] for i in scores.argmax(axis=1).tolist()]
        predictions = []
        for row in scores:
            chosen = np.flatnonzero(row >= 0.5).tolist() or [int(row.argmax())]
            predictions.append(LABEL_SEPARATOR.join(self.names[i] for i in chosen))
        return predictions


def _keys(text: str, multi: bool) -> list[tuple[str, str]]:
    if multi:
        return [(label, label) for label in split_labels(text)]
    return [(norm(text), text)]
