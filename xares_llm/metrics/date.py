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

The per-clip form keeps B(i, j) = [M(i, j) >= s_i - delta/2] as bits (N^2 / 8 bytes): with sample
multiplicities w of a resample (a clip's multiplicity on each of its captions), d_i is 1 - (B w)_i /
sum(w), so every resample's DATE is recomputed exactly from B without re-encoding. What stays fixed
is the TF-IDF weighting of the embeddings, whose idf comes from the whole test set: re-encoding every
resample would cost one full DATE run per resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xares_llm.metrics.base import (
    REFERENCE_DECIMALS,
    MetricError,
    MetricOptions,
    MetricResult,
    SampleStats,
    Scorer,
    expand_pairs,
    pair_owners,
)
from xares_llm.metrics.caption_models import CaptionModels, load_caption_models, pick_device, unique_texts
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
    z_cand: torch.Tensor,
    z_ref: torch.Tensor,
    penalty: torch.Tensor,
    delta: float,
    device: torch.device,
    matches_out: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s [N], d [N]) on the CPU, M built DISCRIMINATION_BLOCK_ROWS rows at a time on `device`.

    With `matches_out` (uint8 [N, ceil(N / 8)]) the rows of B are also written there, bit-packed.
    """
    z_cand, z_ref, penalty = z_cand.to(device), z_ref.to(device), penalty.to(device)
    n = len(z_cand)
    similarity = (z_cand * z_ref).sum(dim=1) * penalty
    discrimination = torch.empty(n, dtype=torch.float32, device=device)
    ref_t = z_ref.T.contiguous()
    for start in range(0, n, DISCRIMINATION_BLOCK_ROWS):
        stop = min(start + DISCRIMINATION_BLOCK_ROWS, n)
        block = (z_cand[start:stop] @ ref_t) * penalty[start:stop, None]  # M[start:stop, :]
        # "above" (M > s + delta/2) plus "near" (|M - s| <= delta/2) is every M >= s - delta/2.
        matched = block >= similarity[start:stop, None] - delta / 2
        discrimination[start:stop] = 1 - matched.sum(dim=1).float() / n
        if matches_out is not None:
            matches_out[start:stop] = np.packbits(matched.cpu().numpy(), axis=1)
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
    n = len(samples.z_cand)
    matches = np.zeros((n, (n + 7) // 8), dtype=np.uint8)
    s, d = discriminability(
        samples.z_cand, samples.z_ref, samples.penalty, samples.delta, samples.models.encoder.device, matches
    )
    h = 2 * s * d / (s + d + HARMONIC_EPS)
    score = float(h.mean())
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
    sizes = [len(rs) for rs in references]
    records = [
        {
            "date": float(hs.mean()),
            "similarity": float(ss.mean()),
            "discrimination": float(ds.mean()),
            "penalty": float(ps[0]),
            "pair_scores": hs.tolist(),
        }
        for hs, ss, ds, ps in zip(*(torch.split(t, sizes) for t in (h, s, d, samples.penalty)), strict=True)
    ]
    owner = pair_owners(references)
    arrays = {"owner": owner, "similarity": s.numpy(), "matches": matches}
    return MetricResult(score, settings, SampleStats("date", records, date_scorer(arrays), "date", arrays))


def date_scorer(arrays: dict[str, np.ndarray]) -> Scorer:
    """DATE of each resample from B: a clip drawn k times brings each of its captions k times."""
    owner, packed = torch.from_numpy(arrays["owner"]), arrays["matches"]
    device = pick_device(None)
    similarity = torch.from_numpy(arrays["similarity"]).to(device)[:, None]
    n = len(owner)

    def scorer(w: np.ndarray) -> np.ndarray:
        pair_w = torch.from_numpy(np.asarray(w, dtype=np.float32))[:, owner].to(device)  # [R, N]
        matched = torch.empty((n, len(pair_w)), dtype=torch.float32, device=device)  # (B @ w.T) [N, R]
        for start in range(0, n, DISCRIMINATION_BLOCK_ROWS):
            rows = np.unpackbits(packed[start : start + DISCRIMINATION_BLOCK_ROWS], axis=1, count=n)
            matched[start : start + len(rows)] = torch.from_numpy(rows).to(device).float() @ pair_w.T
        d = 1 - matched / pair_w.sum(dim=1)[None, :]
        h = 2 * similarity * d / (similarity + d + HARMONIC_EPS)
        return ((pair_w * h.T).sum(dim=1) / pair_w.sum(dim=1)).double().cpu().numpy()

    return scorer
