"""95 % bootstrap intervals of task scores, of track means, and of paired differences between runs.

A resample draws the test clips with replacement (n of n); it is handed to the metric as clip
multiplicities (`xares_llm.metrics.base.SampleStats`), so corpus-level metrics are recomputed on it.
The draws are seeded per task (the report's seed and the task name), so equal seeds give equal intervals, and
two runs compared on one task see the same resamples: that pairing is what makes the interval of a
difference narrower than the two intervals side by side. A mean over tasks takes the mean of the
tasks' r-th replicates, r = 1..R: tasks are resampled independently, so that is a bootstrap of the mean.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from xares_llm.metrics.base import SampleStats

RESAMPLES = 1000
LEVEL = 0.95
DRAW_CHUNK = 100  # resamples drawn per call, so the integer draws never hold R x N int64 at once


@dataclass
class Estimate:
    """A score, its interval (None when not computed) and the bootstrap replicates behind it."""

    score: float
    low: float | None = None
    high: float | None = None
    replicates: np.ndarray | None = field(default=None, repr=False)

    @property
    def has_interval(self) -> bool:
        return self.low is not None


def task_seed(seed: int, task: str) -> int:
    """A stable per-task seed (crc32, not `hash`, which Python salts per process)."""
    return (seed * 1_000_003 + zlib.crc32(task.encode())) % 2**63


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """Clip multiplicities [resamples, n] float32 of `resamples` draws of n clips with replacement."""
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, resamples, DRAW_CHUNK):
        rows = min(DRAW_CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        blocks.append(np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float32))
    return np.concatenate(blocks)


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


def _estimate(score: float, replicates: np.ndarray, level: float) -> Estimate:
    low, high = percentile_interval(replicates, level)
    return Estimate(score, low, high, replicates)


def bootstrap(
    stats: SampleStats, task: str, seed: int = 0, resamples: int = RESAMPLES, level: float = LEVEL
) -> Estimate:
    """The task score and its percentile interval over `resamples` resamples of its test clips."""
    weights = resample_weights(stats.clips, resamples, task_seed(seed, task))
    return _estimate(stats.full_score(), np.asarray(stats.scorer(weights), dtype=np.float64), level)


def paired_difference(
    first: SampleStats, second: SampleStats, task: str, seed: int = 0, resamples: int = RESAMPLES, level: float = LEVEL
) -> Estimate:
    """second - first on the same clips (aligned by the caller), the same resamples for both."""
    if first.clips != second.clips:
        raise ValueError("paired difference needs the two runs' clips aligned one to one")
    weights = resample_weights(first.clips, resamples, task_seed(seed, task))
    diff = np.asarray(second.scorer(weights), dtype=np.float64) - np.asarray(first.scorer(weights), dtype=np.float64)
    return _estimate(second.full_score() - first.full_score(), diff, level)


def mean_estimate(estimates: list[Estimate], level: float = LEVEL) -> Estimate:
    """Plain mean of the scores; an interval only when every task has replicates of equal count."""
    score = float(np.mean([e.score for e in estimates]))
    reps = [e.replicates for e in estimates]
    if not estimates or any(r is None for r in reps) or len({len(r) for r in reps}) != 1:
        return Estimate(score)
    return _estimate(score, np.mean(np.stack(reps), axis=0), level)
