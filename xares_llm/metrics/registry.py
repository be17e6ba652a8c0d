"""Metrics by name, as task YAML files refer to them (``metric: {name: map, args: {num_classes: 200}}``).

Entries are ``"module:function"`` strings imported on first use, so scoring accuracy never imports
torch or transformers; plugins add metrics through the ``xares_llm.metrics`` entry-point group
(`xares_llm.registry`). A metric function takes ``(predictions, references, **args)`` and, when it
needs models, ``options``; `compute_metric` checks names, arguments and inputs once for all of them.
One entry gives both forms of a metric: the corpus score and, in ``result.stats``, its per-clip
statistics from the same pass (a plugin may leave them out).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from xares_llm.metrics.base import MetricError, MetricOptions, MetricResult, SampleStats, check_inputs
from xares_llm.registry import Registry

MetricFn = Callable[..., MetricResult]

METRICS: Registry[MetricFn] = Registry("metric", "xares_llm.metrics")
_INPUT_PARAMS = ("predictions", "references", "options")


def register_metric(name: str, target: str | MetricFn) -> None:
    """Add a metric under `name` (a function or ``"module:function"``); a name is never silently replaced."""
    METRICS.register(name, target)


def metric_names() -> list[str]:
    """Every metric name, plugins included, in registration order (CLI choices and config checks read this)."""
    return METRICS.names()


def get_metric(name: str) -> MetricFn:
    """The metric function registered as `name`; KeyError naming the choices otherwise."""
    return METRICS.get(name)


def _check_args(name: str, fn: MetricFn, args: dict) -> None:
    params = inspect.signature(fn).parameters
    allowed = [p for p in params if p not in _INPUT_PARAMS]
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise MetricError(f"metric {name!r}: unknown argument(s) {unknown}; allowed: {allowed or 'none'}")
    missing = [p for p in allowed if params[p].default is inspect.Parameter.empty and p not in args]
    if missing:
        raise MetricError(f"metric {name!r}: missing required argument(s) {missing}")


def compute_metric(
    name: str,
    predictions: list[str],
    references: list[list[str]],
    args: dict | None = None,
    options: MetricOptions | None = None,
) -> MetricResult:
    """Score `predictions[i]` against the reference list `references[i]` with metric `name`.

    `args` come from the task config; `options` choose models and devices for FENSE and DATE.
    The result's settings start with the metric name and its arguments.
    """
    fn = get_metric(name)
    args = dict(args or {})
    _check_args(name, fn, args)
    check_inputs(predictions, references)
    kwargs = dict(args)
    if "options" in inspect.signature(fn).parameters:
        kwargs["options"] = options or MetricOptions()
    result = fn(list(predictions), [list(refs) for refs in references], **kwargs)
    # Metrics without models are always computed the official way; model-based ones say themselves.
    result.settings = {"metric": name, "args": args, "official": True, **result.settings}
    return result


def sample_stats(
    name: str,
    predictions: list[str],
    references: list[list[str]],
    args: dict | None = None,
    options: MetricOptions | None = None,
) -> SampleStats:
    """The per-clip statistics of `compute_metric`; KeyError for a metric that has none."""
    stats = compute_metric(name, predictions, references, args, options).stats
    if stats is None:
        raise KeyError(f"no per-sample form for metric {name!r}")
    return stats


for _name, _target in (
    ("accuracy", "xares_llm.metrics.classification:accuracy"),
    ("map", "xares_llm.metrics.classification:mean_average_precision"),
    ("iwer", "xares_llm.metrics.asr:iwer"),
    ("icer", "xares_llm.metrics.asr:icer"),
    ("fense", "xares_llm.metrics.fense:fense"),
    ("date", "xares_llm.metrics.date:date"),
):
    register_metric(_name, _target)
