"""FENSE (Clotho, Song Describer): Sentence-BERT cosine times the fluency-error penalty (docs/tasks.md).

Each (prediction, reference) pair is one sample, as the reference system expands multi-caption clips
into one sample per caption; the score is the mean over pairs of cos(c, r) * p(c), with p(c) = 0.1
when the error checker flags the candidate, else 1. Identical texts are encoded once. The pair scores
also give each clip's share, and a resample's score is a weighted mean of them.
"""

from __future__ import annotations

import numpy as np
import torch

from xares_llm.metrics.base import REFERENCE_DECIMALS, MetricOptions, MetricResult, expand_pairs, ratio_stats
from xares_llm.metrics.caption_models import load_caption_models, unique_texts
from xares_llm.metrics.text import norm


def fense(predictions: list[str], references: list[list[str]], options: MetricOptions | None = None) -> MetricResult:
    """Mean over (prediction, reference) pairs of cos(SBERT(c), SBERT(r)) * penalty(c)."""
    models = load_caption_models(options)
    preds, refs = expand_pairs(predictions, references)
    cands, cand_index, _ = unique_texts([norm(p) for p in preds])
    targets, ref_index, _ = unique_texts([norm(r) for r in refs])
    encoder = models.encoder
    z_cand = encoder.embed(encoder.tokenize(cands), progress=models.progress, description="FENSE candidates")
    z_ref = encoder.embed(encoder.tokenize(targets), progress=models.progress, description="FENSE references")
    penalty = models.penalties(cands, n_sentences=len(preds))[cand_index]
    per_pair = (z_cand[cand_index] * z_ref[ref_index]).sum(dim=1) * penalty
    score = float(per_pair.mean())
    settings = {
        "normalize": "norm",
        "pairs": len(preds),
        "flagged_fraction": float((penalty < 1).float().mean()),
        **models.settings,
        "score_rounded": round(score, REFERENCE_DECIMALS),
    }
    sizes = [len(refs) for refs in references]  # pairs are expanded clip by clip, in order
    per_clip = torch.split(per_pair.double(), sizes)
    pair_sum = np.array([float(v.sum()) for v in per_clip])
    pairs = np.array(sizes, dtype=np.float64)
    starts = np.cumsum([0, *sizes[:-1]])
    records = [
        {"fense": float(pair_sum[i] / pairs[i]), "pair_scores": v.tolist(), "penalty": float(penalty[starts[i]])}
        for i, v in enumerate(per_clip)
    ]
    return MetricResult(score=score, settings=settings, stats=ratio_stats("fense", records, pair_sum, pairs))
