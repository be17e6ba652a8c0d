"""Cosine nearest neighbours of query embeddings in a memory of train embeddings, in bounded memory.

Shared by the kNN classifier and nearest-neighbour captioning. Both sides are standardised with the
memory's statistics first (raw features such as log-mels share a large offset that would make every
cosine near 1), then L2-normalised.
"""

from __future__ import annotations

import numpy as np
import torch

SIMILARITY_BUDGET = 1 << 24  # similarity entries per query chunk: 64 MiB of float32
EPS = 1e-6


def standardiser(fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std of `fit` (constant dimensions get std 1, so they stay 0)."""
    mean = fit.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = fit.std(axis=0, dtype=np.float64).astype(np.float32)
    return mean, np.where(std > EPS, std, 1.0).astype(np.float32)


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(EPS)


def cosine_topk(queries: np.ndarray, memory: np.ndarray, k: int, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, memory indices), both (n_queries, k), nearest first."""
    mean, std = standardiser(memory)
    mem = unit_rows(torch.from_numpy((memory - mean) / std).to(device))
    k = min(k, len(memory))
    rows = max(1, SIMILARITY_BUDGET // max(1, len(memory)))
    sims, found = [], []
    for start in range(0, len(queries), rows):
        q = unit_rows(torch.from_numpy((queries[start : start + rows] - mean) / std).to(device))
        values, order = torch.topk(q @ mem.T, k, dim=1)
        sims.append(values.cpu().numpy())
        found.append(order.cpu().numpy())
    return np.concatenate(sims), np.concatenate(found)
