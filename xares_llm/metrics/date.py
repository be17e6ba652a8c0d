"""DATE (MECAT, subtask long): similarity and discriminability, harmonic mean per sample (docs/tasks.md).

A sample is one (clip, caption) pair, as the reference system feeds mecat: a clip with k captions is
k samples, each with the clip's prediction as candidate and that caption as its only reference. So
the candidate corpus holds a prediction once per caption of its clip, and the TF-IDF weights and N
count it that often. For sample i with candidate c_i and reference r_i (after `norm`), with z the
TF-IDF-weighted, L2-normalised Sentence-BERT embedding (weights from each corpus separately, see
`tfidf.py`) and p_i the fluency penalty of c_i:

    M(i, j) = p_i * z(c_i) . z(r_j)                  similarity of candidate i to sample j's reference
    s_i     = M(i, i)
    d_i     = 1 - (#{j: M(i,j) > s_i + delta/2} + #{j: |M(i,j) - s_i| <= delta/2}) / N
    DATE    = mean_i 2 s_i d_i / (s_i + d_i)

d_i asks how many other samples' references candidate i matches at least as well as its own, so the
score is corpus-level by construction: it must see the whole test set at once, never a batch. M is
N x N; it is computed in row blocks, so 20 000 samples need about 80 MB per block, not 1.6 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from xares_llm.metrics.base import REFERENCE_DECIMALS, MetricError, MetricOptions, MetricResult, expand_pairs
from xares_llm.metrics.caption_models import CaptionModels, load_caption_models, unique_texts
from xares_llm.metrics.text import norm
from xares_llm.metrics.tfidf import tfidf_weights

DELTA_LONG = 0.1703  # mecat's delta for the "long" caption subtask (content_long)
DISCRIMINATION_BLOCK_ROWS = 1024  # candidates per block of the N x N similarity matrix
HARMONIC_EPS = 1e-8  # keeps 2sd/(s+d) finite when both are 0, as in mecat


def embed_corpus(models: CaptionModels, texts: Sequence[str], description: str) -> torch.Tensor:
    """TF-IDF-weighted embeddings [N, D] of one corpus, each distinct text encoded once."""
    distinct, inverse, counts = unique_texts(texts)
    encoder = models.encoder
    token_ids = encoder.tokenize(distinct)
    weights = tfidf_weights(encoder, token_ids, counts.numpy(), progress=models.progress)
    return encoder.embed(token_ids, weights, progress=models.progress, description=description)[inverse]


def discriminability(
    z_cand: torch.Tensor, z_ref: torch.Tensor, penalty: torch.Tensor, delta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s [N], d [N]) on the CPU, M built DISCRIMINATION_BLOCK_ROWS rows at a time on `device`."""
    z_cand, z_ref, penalty = z_cand.to(device), z_ref.to(device), penalty.to(device)
    n = len(z_cand)
    similarity = (z_cand * z_ref).sum(dim=1) * penalty
    discrimination = torch.empty(n, dtype=torch.float32, device=device)
    ref_t = z_ref.T.contiguous()
    for start in range(0, n, DISCRIMINATION_BLOCK_ROWS):
        stop = min(start + DISCRIMINATION_BLOCK_ROWS, n)
        block = (z_cand[start:stop] @ ref_t) * penalty[start:stop, None]  # M[start:stop, :]
        own = similarity[start:stop, None]
        upper, lower = own + delta / 2, own - delta / 2
        above = (block > upper).sum(dim=1)
        near = ((block <= upper) & (block >= lower)).sum(dim=1)
        discrimination[start:stop] = 1 - (above + near).float() / n
    return similarity.cpu(), discrimination.cpu()


@dataclass
class DateSamples:
    """DATE's (clip, caption) samples embedded once: where the score and its per-sample form start."""

    models: CaptionModels
    z_cand: torch.Tensor  # [N, D]
    z_ref: torch.Tensor  # [N, D]
    penalty: torch.Tensor  # [N] fluency penalty of each sample's candidate
    delta: float


def embed_samples(
    predictions: list[str], references: list[list[str]], delta: float, options: MetricOptions | None
) -> DateSamples:
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 2:
        raise MetricError(f"date: delta must be a number in (0, 2), got {delta!r}")
    models = load_caption_models(options)
    preds, refs = expand_pairs(predictions, references)
    cands = [norm(p) for p in preds]
    z_cand = embed_corpus(models, cands, "DATE candidates")
    z_ref = embed_corpus(models, [norm(r) for r in refs], "DATE references")
    distinct, inverse, _ = unique_texts(cands)
    penalty = models.penalties(distinct, n_sentences=len(cands))[inverse]
    return DateSamples(models, z_cand, z_ref, penalty, float(delta))


def date(
    predictions: list[str],
    references: list[list[str]],
    delta: float = DELTA_LONG,
    options: MetricOptions | None = None,
) -> MetricResult:
    """Mean over (clip, caption) samples of the harmonic mean of similarity s_i and discriminability d_i."""
    samples = embed_samples(predictions, references, delta, options)
    s, d = discriminability(
        samples.z_cand, samples.z_ref, samples.penalty, samples.delta, samples.models.encoder.device
    )
    score = float((2 * s * d / (s + d + HARMONIC_EPS)).mean())
    settings = {
        "normalize": "norm",
        "delta": samples.delta,
        "samples": len(s),  # (clip, caption) pairs: N of the discrimination term
        "clips": len(predictions),
        "similarity": float(s.mean()),
        "discrimination": float(d.mean()),
        "flagged_fraction": float((samples.penalty < 1).float().mean()),
        "score_rounded": round(score, REFERENCE_DECIMALS),
        **samples.models.settings,
    }
    return MetricResult(score=score, settings=settings)
