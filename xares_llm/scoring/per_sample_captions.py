"""Per-sample FENSE and DATE: the sentence models run once; resamples reuse their embeddings.

FENSE is a mean over (prediction, reference) pairs, so a resample's score is a weighted mean of the
pair scores. DATE's samples are (clip, caption) pairs too, and it is corpus-level through its
discrimination term: d_i counts the samples j whose reference candidate i matches at least as well
as its own (M(i, j) >= s_i - delta/2, which is "above" plus "near" in `xares_llm.metrics.date`).
For a resample with pair multiplicities w (a clip's multiplicity on each of its captions) that
count is (B @ w)_i with B the boolean P x P matrix of those matches, so every resample's DATE is
recomputed exactly from one pass over B, without re-encoding. What stays fixed is the TF-IDF
weighting of the embeddings, whose idf comes from the whole test set: re-encoding every resample
would cost one full DATE run per resample.
"""

from __future__ import annotations

import numpy as np
import torch

from xares_llm.metrics import MetricOptions
from xares_llm.metrics.base import SampleStats
from xares_llm.metrics.date import DELTA_LONG, DISCRIMINATION_BLOCK_ROWS, HARMONIC_EPS, embed_samples


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
    """s, d and their harmonic mean per (clip, caption) sample, as `metrics.date.date` computes them;
    per clip their means; and the resample scorer (a clip drawn k times brings its captions k times)."""
    samples = embed_samples(predictions, references, delta, options)
    device = samples.models.encoder.device
    z, r, p = samples.z_cand.to(device), samples.z_ref.to(device), samples.penalty.to(device)
    similarity = (z * r).sum(dim=1) * p
    lower = similarity - samples.delta / 2
    owner = torch.tensor([i for i, rs in enumerate(references) for _ in rs], dtype=torch.long)

    def matches(w: torch.Tensor) -> torch.Tensor:
        """(B @ w.T) [P, R]: per sample, the weighted count of samples it matches at least as well as its own."""
        out = torch.empty((len(z), w.shape[0]), dtype=torch.float32, device=device)
        ref_t = r.T.contiguous()
        for start in range(0, len(z), DISCRIMINATION_BLOCK_ROWS):
            stop = min(start + DISCRIMINATION_BLOCK_ROWS, len(z))
            block = (z[start:stop] @ ref_t) * p[start:stop, None]
            out[start:stop] = (block >= lower[start:stop, None]).float() @ w.T
        return out

    def harmonic(w: torch.Tensor) -> torch.Tensor:
        """h [P, R] under pair multiplicities w [R, P]."""
        d = 1 - matches(w) / w.sum(dim=1)[None, :]
        s = similarity[:, None]
        return 2 * s * d / (s + d + HARMONIC_EPS)

    def scorer(w: np.ndarray) -> np.ndarray:
        pair_w = torch.from_numpy(np.asarray(w, dtype=np.float32)).to(device)[:, owner.to(device)]
        return ((pair_w * harmonic(pair_w).T).sum(dim=1) / pair_w.sum(dim=1)).double().cpu().numpy()

    ones = torch.ones((1, len(z)), dtype=torch.float32, device=device)
    h = harmonic(ones)[:, 0].cpu()
    d = (1 - matches(ones)[:, 0] / len(z)).cpu()
    s = similarity.cpu()
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
    return SampleStats("date", records, scorer)
