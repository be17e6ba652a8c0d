"""Metrics with the reference system's exact semantics (docs/tasks.md).

    compute_metric("map", predictions, references, {"num_classes": 200}) -> MetricResult(score, settings, stats)

Every metric computes its corpus score and its per-clip form in one pass: `stats` holds a record per
clip and the metric as a function of clip multiplicities, which the report's bootstrap resamples.

Modules, one job each:

    text.py            norm(): the normalisation applied to both sides before every metric
    base.py            MetricOptions, MetricResult, MetricError, input checks, SampleStats (per-clip form)
    classification.py  accuracy, mAP                          (Track A)
    asr.py             iWER, iCER                              (LibriSpeech, AISHELL-1)
    model_files.py     where the FENSE/DATE models come from (local, hub, checked download)
    caption_models.py  Sentence-BERT encoder and fluency-error checker, run natively
    tfidf.py           DATE's soft TF-IDF token weights
    fense.py, date.py  the caption metrics                     (Clotho, Song Describer, MECAT)
    registry.py        metrics by name, as task configs use them
    per_clip.py        per-clip statistics rebuilt from saved arrays (no model, nothing imported by name)
    dummies.py         tiny random models for tests and benchmarks
"""

from xares_llm.metrics.base import MetricError, MetricOptions, MetricResult, SampleStats
from xares_llm.metrics.registry import compute_metric, get_metric, metric_names, register_metric, sample_stats
from xares_llm.metrics.text import norm

__all__ = [
    "MetricError",
    "MetricOptions",
    "MetricResult",
    "SampleStats",
    "compute_metric",
    "get_metric",
    "metric_names",
    "norm",
    "register_metric",
    "sample_stats",
]
