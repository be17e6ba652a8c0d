"""Nearest-neighbour captioning (FENSE, DATE): a test clip is captioned with a caption of its nearest train clip.

Cosine similarity over the pooled embeddings (standardised with the train statistics); the caption
given is the nearest clip's first target in store order, so the prediction is deterministic. A test
clip identical to a train clip therefore gets that clip's caption.
"""

from __future__ import annotations

import numpy as np
import torch

from xares_llm.probe.neighbours import cosine_topk


def nearest_captions(
    train_x: np.ndarray, train_captions: list[list[str]], test_x: np.ndarray, device: torch.device
) -> tuple[list[str], dict]:
    """`train_x[i]` is a train clip's embedding and `train_captions[i]` its captions (at least one)."""
    similarity, found = cosine_topk(test_x, train_x, 1, device)
    predictions = [train_captions[i][0] for i in found[:, 0].tolist()]
    settings = {"similarity": "cosine, standardised", "memory": len(train_x), "caption": "first of the nearest clip"}
    return predictions, settings | {"mean_similarity": float(similarity.mean()) if len(similarity) else None}
