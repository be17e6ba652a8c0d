"""Classification heads on pooled embeddings: linear, one-hidden-layer MLP, kNN (accuracy and mAP tasks).

Fixed hyper-parameters, so probe scores compare across encoders. As HEAR does, a small published grid
is searched on a held-out slice of train (VAL_FRACTION of the train clips, at most VAL_MAX_CLIPS,
drawn with the seed) and scored with the task's own metric:

- linear and MLP (hidden MLP_HIDDEN, ReLU): AdamW, weight decay WEIGHT_DECAY, batch BATCH_SIZE, every
  learning rate in LEARNING_RATES for EPOCHS passes clamped to [MIN_STEPS, MAX_STEPS] steps; the
  held-out score is checked EVALS times and the best (learning rate, step) is kept (earliest wins a
  tie); training stops early after PATIENCE checks without a better score, as HEAR's heads do.
  Cross-entropy for single label, BCE for multi-label. Inputs standardised with the fitting slice's
  statistics. The grid trains as one stacked model (`xares_llm.probe.grid`).
- kNN: cosine similarity, k in K_GRID chosen on the held-out slice; the test clips then search all
  of train. Single label: majority vote (the nearer neighbour breaks a tie); multi-label: the labels
  held by at least half of the neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xares_llm.probe.grid import AdamW, GridHead
from xares_llm.probe.labels import ClassLabels
from xares_llm.probe.neighbours import cosine_topk, standardiser

LEARNING_RATES = (1e-3, 3.2e-3, 1e-2)
MLP_HIDDEN = 512
WEIGHT_DECAY = 1e-4
BATCH_SIZE = 256
EPOCHS = 30
MIN_STEPS = 100
MAX_STEPS = 2000
EVALS = 10
PATIENCE = 3  # evaluations without a better held-out score end the training early
K_GRID = (1, 5, 10, 20)
VAL_FRACTION = 0.1
VAL_MAX_CLIPS = 2000
TIE_BONUS = 1e-3  # per-neighbour vote bonus, nearer is larger; all of them sum to less than one vote

ScoreFn = Callable[[list[str], list[list[str]]], float]  # (predictions, references) -> the task's metric


@dataclass
class ClassData:
    """Embeddings and labels of one task, split into fitting slice, held-out slice and test."""

    labels: ClassLabels
    x_fit: np.ndarray  # (n_examples, D): one row per (clip, label) pair, or per clip for multi-label
    y_fit: np.ndarray  # class ids (n,) or multi-hot (n, C)
    x_val: np.ndarray  # (n_val_clips, D)
    val_refs: list[list[str]]
    x_val_examples: np.ndarray  # the held-out clips as examples, added to the kNN memory for test
    y_val_examples: np.ndarray
    x_test: np.ndarray
    counts: dict  # what was left out, by reason


def split_train(n_clips: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fitting positions, held-out positions) among the train clips, drawn with `seed`."""
    n_val = min(VAL_MAX_CLIPS, round(n_clips * VAL_FRACTION)) if n_clips >= 2 else 0
    order = np.random.default_rng(seed).permutation(n_clips)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def class_data(
    train_x: np.ndarray, train_refs: list[list[str]], test_x: np.ndarray, multi: bool, seed: int
) -> ClassData:
    """`train_x[i]` is clip i's embedding and `train_refs[i]` its targets (clips without targets excluded)."""
    fit, val = split_train(len(train_refs), seed)
    labels = ClassLabels.from_train([t for i in fit for t in train_refs[i]], multi)

    def examples(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        if multi:
            hot, unknown = labels.encode([train_refs[i] for i in positions])
            return train_x[positions], hot, unknown
        rows = [(i, t) for i in positions for t in train_refs[i]]
        ids, unknown = labels.encode([[t] for _, t in rows])
        keep = ids >= 0
        return train_x[[i for i, _ in rows]][keep], ids[keep], unknown

    x_fit, y_fit, _ = examples(fit)
    x_val_ex, y_val_ex, unseen_val = examples(val)
    counts = {"fit_clips": len(fit), "heldout_clips": len(val), "classes": len(labels)}
    counts["heldout_labels_unseen_in_fit"] = unseen_val
    return ClassData(
        labels, x_fit, y_fit, train_x[val], [train_refs[i] for i in val], x_val_ex, y_val_ex, test_x, counts
    )


def class_scores(logits: torch.Tensor, multi: bool) -> np.ndarray:
    return (torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)).cpu().numpy()


def grid_logits(model: GridHead, x: torch.Tensor) -> torch.Tensor:
    """Every member's logits [R, N, C], in slices of 4096 rows."""
    with torch.no_grad():
        return torch.cat([model(x[s : s + 4096]) for s in range(0, len(x), 4096)], dim=1) if len(x) else model(x)


def grid_loss(logits: torch.Tensor, y: torch.Tensor, multi: bool) -> torch.Tensor:
    """The sum over members of each member's mean loss on the batch (members do not interact)."""
    copies = logits.shape[0]
    flat = logits.reshape(-1, logits.shape[-1])
    targets = y.repeat(copies, *([1] * (y.dim() - 1)))
    if multi:
        return nn.functional.binary_cross_entropy_with_logits(flat, targets) * copies
    return nn.functional.cross_entropy(flat, targets) * copies


def train_dense(kind: str, data: ClassData, score: ScoreFn, seed: int, device: torch.device) -> tuple[list[str], dict]:
    """Test predictions of the linear or MLP head at its best held-out (learning rate, step), and those."""
    mean, std = standardiser(data.x_fit)
    x_fit, x_val, x_test = (
        torch.from_numpy((x - mean) / std).to(device) for x in (data.x_fit, data.x_val, data.x_test)
    )
    multi = data.labels.multi
    y_fit = torch.from_numpy(data.y_fit).to(device)
    batch = min(BATCH_SIZE, len(x_fit))
    steps = min(MAX_STEPS, max(MIN_STEPS, EPOCHS * math.ceil(len(x_fit) / batch)))
    eval_every = max(1, steps // EVALS)
    # Too few train clips to hold any out: the middle of the grid, all its steps.
    rates = LEARNING_RATES if len(x_val) else (LEARNING_RATES[len(LEARNING_RATES) // 2],)
    # every learning rate starts from the same weights and sees the same batches
    model = GridHead(kind, x_fit.shape[1], len(data.labels), len(rates), MLP_HIDDEN, seed).to(device)
    lr = torch.tensor(rates, dtype=torch.float32, device=device)[:, None, None]
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed)
    order, position = torch.randperm(len(x_fit), generator=generator), 0
    best: tuple[float | None, int, int, list] | None = None  # (held-out score, member, step, its weights)
    stale = 0  # evaluations since the best improved
    for step in range(1, steps + 1):
        if position + batch > len(order):
            order, position = torch.randperm(len(x_fit), generator=generator), 0
        rows = order[position : position + batch].to(device)
        position += batch
        loss = grid_loss(model(x_fit[rows]), y_fit[rows], multi)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if len(x_val) and (step % eval_every == 0 or step == steps):
            scores = class_scores(grid_logits(model, x_val), multi)
            stale += 1
            for member in range(len(rates)):
                value = score(data.labels.decode_scores(scores[member]), data.val_refs)
                if best is None or value > best[0]:
                    best, stale = (value, member, step, model.member_state(member)), 0
            if stale >= PATIENCE:
                break
    if best is None:
        best = (None, 0, steps, model.member_state(0))
    model.load_member(0, best[3])
    predictions = data.labels.decode_scores(class_scores(grid_logits(model, x_test)[0], multi))
    chosen = {"lr": rates[best[1]], "step": best[2], "heldout_score": best[0], "grid_lr": list(LEARNING_RATES)}
    chosen |= {"steps": steps, "steps_run": step, "patience": PATIENCE, "batch_size": batch}
    chosen |= {"weight_decay": WEIGHT_DECAY, "optimizer": "AdamW"}
    if kind == "mlp":
        chosen["hidden"] = MLP_HIDDEN
    return predictions, chosen


def vote(labels: ClassLabels, neighbour_labels: np.ndarray, k: int) -> np.ndarray:
    """Per-class scores from the k nearest neighbours' labels ((n, K) ids or (n, K, C) multi-hot)."""
    if labels.multi:
        return neighbour_labels[:, :k].mean(axis=1)
    scores = np.zeros((len(neighbour_labels), len(labels)), dtype=np.float64)
    weights = 1.0 + TIE_BONUS * (k - np.arange(k)) / k
    for rank in range(k):
        np.add.at(scores, (np.arange(len(scores)), neighbour_labels[:, rank]), weights[rank])
    return scores


def knn(data: ClassData, score: ScoreFn, device: torch.device) -> tuple[list[str], dict]:
    """Test predictions of the kNN head with the k that scores best on the held-out slice, and that k."""
    grid = [k for k in K_GRID if k <= len(data.x_fit)] or [len(data.x_fit)]
    chosen_k, best = grid[len(grid) // 2], None
    if len(data.x_val):
        _, found = cosine_topk(data.x_val, data.x_fit, max(grid), device)
        neighbours = data.y_fit[found]
        for k in grid:
            value = score(data.labels.decode_scores(vote(data.labels, neighbours, k)), data.val_refs)
            if best is None or value > best:
                chosen_k, best = k, value
    memory_x = np.concatenate([data.x_fit, data.x_val_examples])
    memory_y = np.concatenate([data.y_fit, data.y_val_examples])
    _, found = cosine_topk(data.x_test, memory_x, chosen_k, device)
    predictions = data.labels.decode_scores(vote(data.labels, memory_y[found], min(chosen_k, found.shape[1])))
    hp = {"k": chosen_k, "heldout_score": best, "grid_k": list(K_GRID)}
    return predictions, hp | {"similarity": "cosine, standardised", "memory": len(memory_x)}
