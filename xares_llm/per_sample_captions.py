"""Per-sample FENSE and DATE: the sentence models run once; resamples reuse their embeddings.

FENSE is a mean over (prediction, reference) pairs, so a resample's score is a weighted mean of the
pair scores. DATE is corpus-level through its discrimination term: d_i counts the samples j whose
references candidate i matches at least as well as its own (M(i, j) >= s_i - delta/2, which is
"above" plus "near" in `xares_llm.metrics.date`). For a resample with clip multiplicities w that count
is (B @ w)_i with B the boolean N x N matrix of those matches, so every resample's DATE is
recomputed exactly from one pass over B, without re-encoding. What stays fixed is the TF-IDF
weighting of the embeddings, whose idf comes from the whole test set: re-encoding every resample
would cost one full DATE run per resample.
"""

from __future__ import annotations

import numpy as np
import torch

from xares_llm.metrics import MetricOptions, norm
from xares_llm.metrics.base import MetricError
from xares_llm.metrics.caption_models import load_caption_models, unique_texts
from xares_llm.metrics.date import DELTA_LONG, DISCRIMINATION_BLOCK_ROWS, HARMONIC_EPS, embed_corpus
from xares_llm.per_sample import SampleStats


def fense_stats(predictions: list[str], references: list[list[str]], options: MetricOptions | None) -> SampleStats:
    from xares_llm.metrics.fense import pair_scores

    per_pair, penalty, _ = pair_scores(predictions, references, options)
    sizes = [len(refs) for refs in references]  # pairs are expanded clip by clip, in order
    per_clip = torch.split(per_pair.double(), sizes)
    pair_sum = np.array([float(v.sum()) for v in per_clip])
    pairs = np.array(sizes, dtype=np.float64)
    starts = np.cumsum([0, *sizes[:-1]])
    records = [
        {"fense": float(pair_sum[i] / pairs[i]), "pair_scores": v.tolist(), "penalty": float(penalty[starts[i]])}
        for i, v in enumerate(per_clip)
    ]
    return SampleStats("fense", records, lambda w: (w @ pair_sum) / (w @ pairs))


def date_stats(
    predictions: list[str],
    references: list[list[str]],
    delta: float = DELTA_LONG,
    options: MetricOptions | None = None,
) -> SampleStats:
    """s_i, d_i and the harmonic mean per sample, as `metrics.date.date` computes them, and the resample scorer."""
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 2:
        raise MetricError(f"date: delta must be a number in (0, 2), got {delta!r}")
    models = load_caption_models(options)
    cands = [norm(p) for p in predictions]
    groups = [[norm(r) for r in refs] for refs in references]
    owner = torch.tensor([i for i, refs in enumerate(groups) for _ in refs], dtype=torch.long)
    z_cand = embed_corpus(models, cands, "DATE candidates")
    z_refs = embed_corpus(models, [r for refs in groups for r in refs], "DATE references")
    sizes = torch.tensor([len(refs) for refs in groups], dtype=torch.float32)
    ref_mean = torch.zeros_like(z_cand).index_add_(0, owner, z_refs) / sizes[:, None]
    distinct, inverse, _ = unique_texts(cands)
    penalty = models.penalties(distinct, n_sentences=len(cands))[inverse]
    device = models.encoder.device
    z, r, p = z_cand.to(device), ref_mean.to(device), penalty.to(device)
    similarity = (z * r).sum(dim=1) * p
    lower = similarity - float(delta) / 2

    def matches(w: torch.Tensor) -> torch.Tensor:
        """(B @ w.T) [N, R]: per candidate, the weighted count of samples it matches at least as well as its own."""
        out = torch.empty((len(z), w.shape[0]), dtype=torch.float32, device=device)
        ref_t = r.T.contiguous()
        for start in range(0, len(z), DISCRIMINATION_BLOCK_ROWS):
            stop = min(start + DISCRIMINATION_BLOCK_ROWS, len(z))
            block = (z[start:stop] @ ref_t) * p[start:stop, None]
            out[start:stop] = (block >= lower[start:stop, None]).float() @ w.T
        return out

    def scorer(w: np.ndarray) -> np.ndarray:
        weights = torch.from_numpy(np.asarray(w, dtype=np.float32)).to(device)
        total = weights.sum(dim=1)  # [R]
        d = 1 - matches(weights) / total[None, :]  # [N, R]
        s = similarity[:, None]
        harmonic = 2 * s * d / (s + d + HARMONIC_EPS)
        return ((weights * harmonic.T).sum(dim=1) / total).double().cpu().numpy()

    n = len(cands)
    d_full = (1 - matches(torch.ones((1, n), dtype=torch.float32, device=device))[:, 0] / n).cpu()
    s_cpu = similarity.cpu()
    harmonic = 2 * s_cpu * d_full / (s_cpu + d_full + HARMONIC_EPS)
    records = [
        {
            "date": float(harmonic[i]),
            "similarity": float(s_cpu[i]),
            "discrimination": float(d_full[i]),
            "penalty": float(penalty[i]),
        }
        for i in range(n)
    ]
    return SampleStats("date", records, scorer)
