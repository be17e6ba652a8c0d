"""Per-clip statistics as plain arrays and back: what `xares score` saves so `xares report` needs no model.

A `SampleStats` is rebuilt from its metric name, its kind (which resample formula) and its arrays;
the kinds are a closed list, so nothing named in a saved file is imported or run.
"""

from __future__ import annotations

import numpy as np

from xares_llm.metrics.base import MetricError, SampleStats
from xares_llm.registry import import_target

RESAMPLERS = {
    "ratio": "xares_llm.metrics.base:ratio_scorer",  # accuracy, FENSE
    "map": "xares_llm.metrics.classification:map_scorer",
    "edit_rate": "xares_llm.metrics.asr:edit_rate_scorer",  # iWER, iCER
    "date": "xares_llm.metrics.date:date_scorer",
}


def rebuild_stats(metric: str, kind: str, arrays: dict[str, np.ndarray], clips: int) -> SampleStats:
    """The statistics a `SampleStats` of this kind held over `clips` clips, without its records."""
    if kind not in RESAMPLERS:
        raise MetricError(f"per-clip statistics of kind {kind!r} are unknown; known: {', '.join(RESAMPLERS)}")
    try:
        scorer = import_target(RESAMPLERS[kind])(arrays)
    except KeyError as e:
        raise MetricError(f"per-clip statistics of kind {kind!r} lack the array {e}") from e
    return SampleStats(metric, [], scorer, kind, arrays, clips)
