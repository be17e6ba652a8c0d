"""CTC head for speech recognition tasks (iWER, iCER): a small frame-level network over the stored frames.

Vocabulary: the characters of the train transcripts after `norm` (the metric's normalisation), so the
head spells what the metric compares; id 0 is the CTC blank. Network: Conv1d(D, HIDDEN, KERNEL) with
stride ceil(frame rate / MAX_RATE_HZ) (at most 50 output frames per second), GELU, Conv1d(HIDDEN,
HIDDEN, KERNEL), GELU, Linear(HIDDEN, vocabulary + 1). AdamW at LR on length-bucketed batches of at
most FRAME_BUDGET padded frames for EPOCHS passes over the batches, clamped to [MIN_STEPS, MAX_STEPS]
steps; greedy decoding. Frames are read from the store batch by
batch (never all held in memory), standardised with the train split's pooled statistics.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xares_llm.cache import FeatureSplit
from xares_llm.metrics.text import norm
from xares_llm.probe.grid import AdamW

HIDDEN = 128
KERNEL = 5
MAX_RATE_HZ = 50.0
LR = 2e-3
WEIGHT_DECAY = 1e-4
EPOCHS = 3
MIN_STEPS = 40
MAX_STEPS = 3000
FRAME_BUDGET = 12000  # padded input frames per batch
MAX_BATCH = 32
DECODE_BUDGET = 40000
BLANK = 0


class CTCHead(nn.Module):
    def __init__(self, dim: int, vocabulary: int, stride: int):
        super().__init__()
        self.stride = stride
        pad = KERNEL // 2
        self.net = nn.Sequential(
            nn.Conv1d(dim, HIDDEN, KERNEL, stride=stride, padding=pad),
            nn.GELU(),
            nn.Conv1d(HIDDEN, HIDDEN, KERNEL, padding=pad),
            nn.GELU(),
        )
        self.out = nn.Linear(HIDDEN, vocabulary + 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths - 1, self.stride, rounding_mode="floor") + 1

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> log-probabilities (B, T', vocabulary + 1)."""
        hidden = self.net(frames.transpose(1, 2)).transpose(1, 2)
        return torch.log_softmax(self.out(hidden), dim=-1)


@dataclass
class FrameReader:
    """Padded, standardised batches of clips read from a store split."""

    store: FeatureSplit
    mean: np.ndarray
    std: np.ndarray
    nonfinite_frames: int = 0

    def batch(self, clips: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        arrays = []
        for index in clips:
            frames = self.store.frames(index).astype(np.float32)
            bad = ~np.isfinite(frames)
            if bad.any():  # counted; standardised to 0 like padding
                self.nonfinite_frames += int(bad.any(axis=1).sum())
                frames = np.where(bad, self.mean, frames)
            arrays.append((frames - self.mean) / self.std)
        lengths = [max(1, len(a)) for a in arrays]
        padded = np.zeros((len(arrays), max(lengths), len(self.mean)), dtype=np.float32)
        for row, a in enumerate(arrays):
            padded[row, : len(a)] = a
        return torch.from_numpy(padded).to(device), torch.tensor(lengths, device=device)


def frame_statistics(stats: np.ndarray, frame_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global per-dimension mean and std of all frames from per-clip mean | std rows weighted by length."""
    dim = stats.shape[1] // 2
    weights = frame_counts.astype(np.float64)[:, None]
    total = max(1.0, float(weights.sum()))
    mean = (weights * stats[:, :dim]).sum(axis=0) / total
    second = (weights * (stats[:, dim:] ** 2 + stats[:, :dim] ** 2)).sum(axis=0) / total
    std = np.sqrt(np.maximum(second - mean**2, 0.0))
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def length_buckets(lengths: np.ndarray, budget: int, max_batch: int) -> list[np.ndarray]:
    """Positions sorted by length, cut into batches whose padded size stays within `budget` frames."""
    order = np.argsort(lengths, kind="stable")
    batches, current = [], []
    for position in order.tolist():
        if current and ((len(current) + 1) * lengths[position] > budget or len(current) >= max_batch):
            batches.append(np.array(current))
            current = []
        current.append(position)
    if current:
        batches.append(np.array(current))
    return batches


def needed_frames(ids: list[int]) -> int:
    """CTC needs one output frame per label plus a blank between equal neighbours."""
    return len(ids) + sum(1 for a, b in itertools.pairwise(ids) if a == b)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, alphabet: list[str]) -> list[str]:
    best = log_probs.argmax(dim=-1).cpu().numpy()
    texts = []
    for row, length in zip(best, lengths.tolist(), strict=True):
        ids = row[:length]
        keep = np.concatenate([[True], ids[1:] != ids[:-1]]) & (ids != BLANK) if len(ids) else ids.astype(bool)
        texts.append("".join(alphabet[i - 1] for i in ids[keep].tolist()))
    return texts


def train_ctc(
    train: FeatureSplit,
    train_pairs: tuple[np.ndarray, list[str]],
    test: FeatureSplit,
    test_clips: list[int],
    stats: np.ndarray,
    frame_rate_hz: float,
    seed: int,
    device: torch.device,
) -> tuple[list[str], dict]:
    """Train on (clip index, transcript) pairs of `train`; greedy transcripts of `test_clips`, and the settings."""
    clips, texts = train_pairs
    normalised = [norm(t) for t in texts]
    alphabet = sorted({c for t in normalised for c in t})
    ids = {c: i + 1 for i, c in enumerate(alphabet)}
    targets = [[ids[c] for c in t] for t in normalised]
    stride = max(1, math.ceil(frame_rate_hz / MAX_RATE_HZ - 1e-9))
    in_frames = train.frame_counts[clips]
    out_frames = (np.maximum(in_frames, 1) - 1) // stride + 1
    usable = np.array([out_frames[i] >= needed_frames(t) for i, t in enumerate(targets)], dtype=bool)
    positions = np.flatnonzero(usable)
    mean, std = frame_statistics(stats, train.frame_counts)
    reader = FrameReader(train, mean, std)
    torch.manual_seed(seed)
    model = CTCHead(len(mean), len(alphabet), stride).to(device)
    optimizer = AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    batches = [positions[b] for b in length_buckets(in_frames[positions], FRAME_BUDGET, MAX_BATCH)]
    steps = min(MAX_STEPS, max(MIN_STEPS, EPOCHS * len(batches))) if batches else 0
    rng = np.random.default_rng(seed)
    schedule: list[int] = []
    model.train()
    for _ in range(steps):
        if not schedule:
            schedule = rng.permutation(len(batches)).tolist()
        batch = batches[schedule.pop()]
        frames, lengths = reader.batch(clips[batch].tolist(), device)
        log_probs = model(frames)
        flat = torch.tensor([i for p in batch for i in targets[p]], dtype=torch.long, device=device)
        target_lengths = torch.tensor([len(targets[p]) for p in batch], device=device)
        loss = nn.functional.ctc_loss(
            log_probs.transpose(0, 1), flat, model.output_lengths(lengths), target_lengths, BLANK, zero_infinity=True
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test_reader = FrameReader(test, mean, std)
    predictions: dict[int, str] = {}
    test_lengths = test.frame_counts[test_clips] if test_clips else np.zeros(0, dtype=np.int64)
    with torch.no_grad():
        for bucket in length_buckets(test_lengths, DECODE_BUDGET, 4 * MAX_BATCH):
            chosen = [test_clips[p] for p in bucket.tolist()]
            frames, lengths = test_reader.batch(chosen, device)
            decoded = greedy_decode(model(frames), model.output_lengths(lengths), alphabet)
            predictions.update(zip(chosen, decoded, strict=True))
    settings = {"steps": steps, "lr": LR, "weight_decay": WEIGHT_DECAY, "hidden": HIDDEN, "kernel": KERNEL}
    settings |= {"stride": stride, "frame_budget": FRAME_BUDGET, "vocabulary": len(alphabet), "optimizer": "AdamW"}
    counts = {"too_short_pairs": int((~usable).sum()), "nonfinite_frames": reader.nonfinite_frames}
    counts["test_nonfinite_frames"] = test_reader.nonfinite_frames
    return [predictions[c] for c in test_clips], settings | {"left_out": counts}
