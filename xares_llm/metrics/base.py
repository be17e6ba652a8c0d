"""What every metric takes and returns, and the input checks they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xares_llm.errors import XaresError

RESTRICT_CHUNK = 100  # resamples widened to every clip at a time by `SampleStats.restricted`
REFERENCE_DECIMALS = 4  # mecat reports FENSE and DATE rounded to 4 decimals; settings["score_rounded"] carries that


class MetricError(XaresError):
    """Metric inputs or metric models are unusable: the message says which and what to do."""


@dataclass
class MetricOptions:
    """Runtime choices for the model-based metrics (FENSE, DATE); not part of a task's config."""

    sbert: str | None = None  # local dir or hub id; None -> $XARES_SBERT, else the official hub id
    echecker: str | None = None  # local .ckpt, 'none' (no penalty), or None -> $XARES_ECHECKER, else official
    cache_dir: Path | None = None  # cache root; the echecker is downloaded into <cache_dir>/metrics
    device: str | None = None  # None -> cuda if available else cpu
    progress: bool = False  # show a rich progress bar for the model-based metrics


@dataclass
class MetricResult:
    """One task's score, everything that produced it, and its per-clip form from the same pass."""

    score: float  # in [0, 1], higher is better; unrounded (FENSE and DATE add settings['score_rounded'])
    settings: dict  # metric args, model ids/paths/sha256, "official": False when a substitute was used
    stats: SampleStats | None = field(default=None, repr=False)  # None for a plugin metric without one


def check_inputs(predictions: list[str], references: list[list[str]]) -> None:
    """Fail early, naming the sample, on inputs no metric can score."""
    if len(predictions) != len(references):
        raise MetricError(f"{len(predictions)} predictions but {len(references)} reference lists; they must pair up")
    if not predictions:
        raise MetricError("no samples to score (0 predictions)")
    for i, (prediction, refs) in enumerate(zip(predictions, references, strict=True)):
        if not isinstance(prediction, str):
            raise MetricError(f"prediction {i} is a {type(prediction).__name__}, expected a string")
        if isinstance(refs, str) or not isinstance(refs, list | tuple):
            raise MetricError(f"references {i} must be a list of strings, got {type(refs).__name__}")
        if not refs:
            raise MetricError(f"sample {i} has no reference")
        if not all(isinstance(r, str) for r in refs):
            raise MetricError(f"references {i} must contain only strings")


def expand_pairs(predictions: list[str], references: list[list[str]]) -> tuple[list[str], list[str]]:
    """One (prediction, reference) pair per reference, as the reference system expands list labels."""
    pairs = [(prediction, ref) for prediction, refs in zip(predictions, references, strict=True) for ref in refs]
    return [p for p, _ in pairs], [r for _, r in pairs]


def pair_owners(references: list[list[str]]) -> np.ndarray:
    """The clip of each expanded pair [P] (int64): pairs follow `expand_pairs`, clip by clip."""
    return np.array([i for i, refs in enumerate(references) for _ in refs], dtype=np.int64)


# A metric as a function of clip multiplicities: (resamples, clips) weights -> one score per resample.
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class SampleStats:
    """One task's per-clip records and its metric as a function of clip multiplicities.

    `kind` names the resample formula and `arrays` the sufficient statistics it reads, so the scorer
    can be saved and rebuilt without the predictions or any model (`xares_llm.metrics.per_clip`).
    """

    metric: str
    records: list[dict]  # one per clip: the lines of per_sample/<task>.jsonl
    scorer: Scorer
    kind: str = ""  # "" for statistics that cannot be saved (a restriction to some clips)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    clips: int = -1  # -1: len(records)

    def __post_init__(self) -> None:
        if self.clips < 0:
            self.clips = len(self.records)

    def full_score(self) -> float:
        return float(self.scorer(np.ones((1, self.clips), dtype=np.float32))[0])

    def restricted(self, clips: Sequence[int]) -> SampleStats:
        """The same metric over a subset of the clips: the others weigh zero in every resample."""
        index = np.asarray(clips, dtype=np.int64)

        def scorer(w: np.ndarray) -> np.ndarray:
            scores = []
            for start in range(0, len(w), RESTRICT_CHUNK):  # each resample scores alone; this bounds memory
                full = np.zeros((len(w[start : start + RESTRICT_CHUNK]), self.clips), dtype=np.float32)
                full[:, index] = w[start : start + RESTRICT_CHUNK]
                scores.append(self.scorer(full))
            return np.concatenate(scores)

        records = [self.records[i] for i in index] if self.records else []
        return SampleStats(self.metric, records, scorer, clips=len(index))


def ratio_scorer(arrays: dict[str, np.ndarray]) -> Scorer:
    """Resampled sum(numerator) / sum(denominator): accuracy (hits / pairs) and FENSE (pair scores / pairs)."""
    numerator, denominator = arrays["numerator"], arrays["denominator"]
    return lambda w: (w @ numerator) / (w @ denominator)


def ratio_stats(metric: str, records: list[dict], numerator: np.ndarray, denominator: np.ndarray) -> SampleStats:
    arrays = {"numerator": numerator, "denominator": denominator}
    return SampleStats(metric, records, ratio_scorer(arrays), "ratio", arrays)
