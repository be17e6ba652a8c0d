"""The whole benchmark in one call: extract what is missing, train, evaluate, score.

Each stage skips what is already complete (parts up to date, a finished run, existing
predictions), so calling it again after an interruption continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from xares_llm.audio.decoding import REFERENCE_RESAMPLER
from xares_llm.cache.format import REFERENCE_PRECISION
from xares_llm.devices import resolve_device
from xares_llm.distributed import barrier, current_world, init_process_group
from xares_llm.extract.report import ExtractProgress, ExtractReport, not_complete_error
from xares_llm.extract.run import extract
from xares_llm.lalm.evaluate import EvalProgress, evaluate
from xares_llm.lalm.recipe import Recipe
from xares_llm.lalm.train import TrainProgress, TrainResult, train
from xares_llm.metrics import MetricOptions
from xares_llm.scoring.score import Scores, score_run
from xares_llm.tasks.schema import Mixture, Split, load_mixture


@dataclass
class Hooks:
    """Progress reporters per stage; `stage` is told when each stage starts."""

    stage: Callable[[str], None] | None = None
    extract: ExtractProgress | None = None
    train: TrainProgress | None = None
    evaluate: EvalProgress | None = None


@dataclass
class PipelineResult:
    extract: ExtractReport
    train: TrainResult
    scores: Scores | None  # None on the other ranks of a torchrun launch: rank 0 scores


def run_pipeline(
    encoder: str,
    mixture: str | Mixture,
    recipe: Recipe,
    cache_root: Path,
    data_root: Path,
    run_dir: Path | Callable[[str], Path],
    encoder_args: str | dict | None = None,
    encoder_precision: str = REFERENCE_PRECISION,
    resampler: str = REFERENCE_RESAMPLER,
    dtype: str = "float16",
    device: str | None = None,
    metric_options: MetricOptions | None = None,
    hooks: Hooks | None = None,
    threads: int | None = None,
) -> PipelineResult:
    """Extract, train, evaluate and score. `run_dir` may be a function of the encoder-id, so the
    caller can name the run after it without loading the encoder a second time. The encoder computes
    in `encoder_precision` (fp32, the reference, unless fp16/bf16 autocast is asked for) on clips
    resampled by `resampler` (sinc, the reference's, or soxr) and stores frames as `dtype` (cache/dtypes.py)."""
    hooks = hooks or Hooks()
    mix = load_mixture(mixture) if isinstance(mixture, str) else mixture
    tasks = list(mix.tasks.values())
    splits: dict[str, list[Split]] = {t.name: [] for t in tasks}
    for name in mix.weights:
        splits[name].append("train")
    for name in mix.evaluate:
        splits[name].append("test")

    world = current_world()  # under torchrun every rank runs this; the part locks split extraction
    dev = resolve_device(device)
    if world.size > 1:
        if dev.type == "cuda":
            dev = torch.device("cuda", world.local_rank)
        init_process_group(world, dev)
    if hooks.stage and world.main:
        hooks.stage("extract")
    report = extract(
        encoder,
        tasks,
        cache_root,
        data_root,
        splits=splits,
        encoder_args=encoder_args,
        device=str(dev),
        precision=encoder_precision,
        resampler=resampler,
        dtype=dtype,
        progress=hooks.extract if world.main else None,
        threads=threads,
    )
    barrier(world)  # every part is written before any rank trains on it
    if report.not_complete:  # damaged shards or too many dropped clips: nothing to train on honestly
        raise not_complete_error(report.not_complete)

    if hooks.stage and world.main:
        hooks.stage("train")
    if callable(run_dir):  # named after the encoder-id, known once the encoder is loaded
        run_dir = run_dir(report.encoder_id)
    trained = train(run_dir, recipe, mix, report.encoder_id, cache_root, encoder, device, hooks.train, threads)

    if hooks.stage and world.main:
        hooks.stage("evaluate")
    evaluate(run_dir, cache_root, device=device, progress=hooks.evaluate, threads=threads)
    if hooks.stage and world.main:
        hooks.stage("score")
    return PipelineResult(report, trained, score_run(run_dir, metric_options) if world.main else None)
