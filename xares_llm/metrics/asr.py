"""Transcription metrics of Track B: iWER (LibriSpeech) and iCER (AISHELL-1), corpus level, as the reference.

Corpus level means total edits over total reference units across the test set, not a mean of
per-utterance rates; jiwer computes exactly that when given whole lists. Its alignment of every pair
also gives each clip's edits, so a resample's rate is its summed edits over its summed units.
"""

from __future__ import annotations

import jiwer
import numpy as np

from xares_llm.metrics.base import MetricResult, SampleStats, Scorer, expand_pairs, pair_owners
from xares_llm.metrics.text import norm

_EDIT_KINDS = ("hits", "substitutions", "deletions", "insertions")
_SPAN_KIND = {"equal": "hits", "substitute": "substitutions", "delete": "deletions"}  # else an insertion


def _clip_counts(out: jiwer.WordOutput | jiwer.CharacterOutput | None, owner: list[int], n: int) -> dict:
    """Hits, substitutions, deletions and insertions per clip [n] from the alignment of every pair."""
    counts = {k: np.zeros(n) for k in _EDIT_KINDS}
    if out is None:
        return counts
    for i, chunks in zip(owner, out.alignments, strict=True):
        for chunk in chunks:
            key = _SPAN_KIND.get(chunk.type)
            if key:
                counts[key][i] += chunk.ref_end_idx - chunk.ref_start_idx
            else:
                counts["insertions"][i] += chunk.hyp_end_idx - chunk.hyp_start_idx
    return counts


def _inverse_rate(metric: str, predictions: list[str], references: list[list[str]], unit: str) -> MetricResult:
    """Corpus (S + D + I) / (S + D + H) in words or characters (spaces are characters too), and its
    per-clip form."""
    preds, refs = expand_pairs(predictions, references)
    refs, hyps = [norm(r) for r in refs], [norm(p) for p in preds]
    owner = pair_owners(references)
    # A reference that normalises to "" has no units; jiwer counts every hypothesis unit there as an
    # insertion, which is what a corpus rate means. Only an all-empty corpus is undefined: rate 0
    # when every hypothesis is empty too, else 1 (nothing right, everything inserted).
    out = None
    if not any(refs):
        rate, counts = (0.0 if not any(hyps) else 1.0), {"reference_units": 0}
    else:
        out = (jiwer.process_words if unit == "word" else jiwer.process_characters)(refs, hyps)
        counts = {"hits": out.hits, "substitutions": out.substitutions, "deletions": out.deletions}
        counts["insertions"] = out.insertions
        rate = (out.substitutions + out.deletions + out.insertions) / (out.substitutions + out.deletions + out.hits)
    settings = {"normalize": "norm", "unit": unit, "error_rate": rate, "pairs": len(preds), **counts}
    stats = _edit_stats(metric, unit, _clip_counts(out, owner, len(references)), owner, hyps)
    return MetricResult(score=max(0.0, 1.0 - rate), settings=settings, stats=stats)


def _edit_stats(metric: str, unit: str, counts: dict, owner: list[int], hyps: list[str]) -> SampleStats:
    hyp_nonempty = np.zeros(len(counts["hits"]))
    for i, hyp in zip(owner, hyps, strict=True):
        hyp_nonempty[i] += bool(hyp)
    edits = counts["substitutions"] + counts["deletions"] + counts["insertions"]
    units = counts["substitutions"] + counts["deletions"] + counts["hits"]
    records = []
    for i in range(len(units)):
        record = {k: int(v[i]) for k, v in counts.items()}
        record |= {"unit": unit, "reference_units": int(units[i])}
        record["error_rate"] = float(edits[i] / units[i]) if units[i] else None
        records.append(record)
    arrays = {"edits": edits, "units": units, "hyp_nonempty": hyp_nonempty}
    return SampleStats(metric, records, edit_rate_scorer(arrays), "edit_rate", arrays)


def edit_rate_scorer(arrays: dict[str, np.ndarray]) -> Scorer:
    """max(0, 1 - summed edits / summed units) of each resample."""
    edits, units, hyp_nonempty = arrays["edits"], arrays["units"], arrays["hyp_nonempty"]

    def scorer(w: np.ndarray) -> np.ndarray:
        total_edits, total_units = w @ edits, w @ units
        # As the corpus metric: a resample whose references are all empty has rate 0, or 1 if any hypothesis is not.
        empty_rate = (w @ hyp_nonempty > 0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(total_units > 0, total_edits / total_units, empty_rate)
        return np.maximum(0.0, 1.0 - rate)

    return scorer


def iwer(predictions: list[str], references: list[list[str]]) -> MetricResult:
    """max(0, 1 - WER) over the corpus."""
    return _inverse_rate("iwer", predictions, references, "word")


def icer(predictions: list[str], references: list[list[str]]) -> MetricResult:
    """max(0, 1 - CER) over the corpus; characters after `norm`, spaces included."""
    return _inverse_rate("icer", predictions, references, "char")
