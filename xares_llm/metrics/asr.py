"""Transcription metrics of Track B: iWER (LibriSpeech) and iCER (AISHELL-1), corpus level, as the reference.

Corpus level means total edits over total reference units across the test set, not a mean of
per-utterance rates; jiwer computes exactly that when given whole lists.
"""

from __future__ import annotations

import jiwer

from xares_llm.metrics.base import MetricResult, expand_pairs
from xares_llm.metrics.text import norm


def _edit_rate(references: list[str], hypotheses: list[str], unit: str) -> tuple[float, dict]:
    """Corpus (S + D + I) / (S + D + H) in words or characters; spaces are characters too."""
    # A reference that normalises to "" has no units; jiwer counts every hypothesis unit there as an
    # insertion, which is what a corpus rate means. Only an all-empty corpus is undefined: rate 0
    # when every hypothesis is empty too, else 1 (nothing right, everything inserted).
    if not any(references):
        return (0.0 if not any(hypotheses) else 1.0), {"reference_units": 0}
    process = jiwer.process_words if unit == "word" else jiwer.process_characters
    out = process(references, hypotheses)
    counts = {"hits": out.hits, "substitutions": out.substitutions, "deletions": out.deletions}
    counts["insertions"] = out.insertions
    edits = out.substitutions + out.deletions + out.insertions
    total = out.substitutions + out.deletions + out.hits
    return edits / total, counts


def _inverse_rate(predictions: list[str], references: list[list[str]], unit: str) -> MetricResult:
    preds, refs = expand_pairs(predictions, references)
    rate, counts = _edit_rate([norm(r) for r in refs], [norm(p) for p in preds], unit)
    settings = {"normalize": "norm", "unit": unit, "error_rate": rate, "pairs": len(preds), **counts}
    return MetricResult(score=max(0.0, 1.0 - rate), settings=settings)


def iwer(predictions: list[str], references: list[list[str]]) -> MetricResult:
    """max(0, 1 - WER) over the corpus."""
    return _inverse_rate(predictions, references, "word")


def icer(predictions: list[str], references: list[list[str]]) -> MetricResult:
    """max(0, 1 - CER) over the corpus; characters after `norm`, spaces included."""
    return _inverse_rate(predictions, references, "char")
