"""Bootstrap intervals: they cover the analytic value, are reproducible by seed, and pair runs on one resample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xares_llm.metrics import sample_stats
from xares_llm.report.bootstrap import bootstrap, mean_estimate, paired_difference, resample_weights


def accuracy_stats(correct: list[bool]):
    return sample_stats("accuracy", ["yes" if c else "no" for c in correct], [["yes"]] * len(correct))


def test_accuracy_interval_matches_the_binomial_interval():
    n, hits = 400, 300
    stats = accuracy_stats([True] * hits + [False] * (n - hits))
    estimate = bootstrap(stats, "esc50", seed=0)
    p = hits / n
    half = 1.96 * math.sqrt(p * (1 - p) / n)  # normal approximation: 0.0424 for n = 400
    assert estimate.score == p
    assert estimate.low < p < estimate.high
    assert estimate.low == pytest.approx(p - half, abs=0.01) and estimate.high == pytest.approx(p + half, abs=0.01)


def test_equal_seeds_give_equal_intervals_and_other_seeds_differ():
    stats = accuracy_stats([i % 3 != 0 for i in range(150)])
    a, b = bootstrap(stats, "cremad", seed=7), bootstrap(stats, "cremad", seed=7)
    assert (a.low, a.high) == (b.low, b.high)
    assert np.array_equal(a.replicates, b.replicates)
    c = bootstrap(stats, "cremad", seed=8)
    assert not np.array_equal(a.replicates, c.replicates)


def test_resample_weights_draw_n_of_n():
    w = resample_weights(37, 250, seed=3)
    assert w.shape == (250, 37) and (w.sum(axis=1) == 37).all()
    assert w.mean() == pytest.approx(1.0) and (w == 0).any()


def test_paired_difference_excludes_zero_when_one_run_wins_on_most_clips():
    base = [i % 2 == 0 for i in range(200)]
    better = [c or i % 4 == 1 for i, c in enumerate(base)]  # right on every clip base gets, and on half the rest
    diff = paired_difference(accuracy_stats(base), accuracy_stats(better), "gtzan")
    assert diff.score == pytest.approx(0.25)
    assert 0 < diff.low < diff.score < diff.high
    same = paired_difference(accuracy_stats(base), accuracy_stats(base), "gtzan")
    assert (same.score, same.low, same.high) == (0.0, 0.0, 0.0)


def test_paired_interval_is_narrower_than_the_unpaired_intervals():
    rng = np.random.default_rng(0)
    base = list(rng.random(300) < 0.6)
    other = [c if rng.random() < 0.9 else not c for c in base]  # agrees with base on 90 % of clips
    diff = paired_difference(accuracy_stats(base), accuracy_stats(other), "nsynth")
    a, b = bootstrap(accuracy_stats(base), "nsynth"), bootstrap(accuracy_stats(other), "nsynth")
    assert diff.high - diff.low < (a.high - a.low) + (b.high - b.low)


def test_mean_of_tasks_averages_replicates():
    first = bootstrap(accuracy_stats([True, False] * 50), "a")
    second = bootstrap(accuracy_stats([True] * 90 + [False] * 10), "b")
    mean = mean_estimate([first, second])
    assert mean.score == pytest.approx(0.7)
    assert mean.low < 0.7 < mean.high
    assert mean.high - mean.low < max(first.high - first.low, second.high - second.low)
