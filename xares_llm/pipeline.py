"""The whole benchmark in one call: extract what is missing, train, evaluate, score.

Each stage skips what is already complete (parts up to date, a finished run, existing
predictions), so calling it again after an interruption continues where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from xares_llm.audio.decoding import REFERENCE_RESAMPLER
from xares_llm.cache.format import REFERENCE_PRECISION
from xares_llm.devices import device_name, resolve_device
from xares_llm.distributed import World, barrier, current_world, init_process_group
from xares_llm.extract.report import ExtractProgress, ExtractReport, not_complete_error
from xares_llm.extract.run import extract
from xares_llm.lalm.evaluate import EvalProgress, evaluate
from xares_llm.lalm.recipe import Recipe
from xares_llm.lalm.runs import read_run
from xares_llm.lalm.train import TrainProgress, TrainResult, train
from xares_llm.metrics import MetricOptions
from xares_llm.scoring.cost import record_stage
from xares_llm.scoring.predictions import PREDICTIONS_DIR
from xares_llm.scoring.score import Scores, score_run
from xares_llm.scoring.seed_groups import seed_run_dir, write_group_summary
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
    seeds: dict[int, Scores | None] | None = None  # with `seeds`: each seed's scores, the first as above
    group: dict | None = None  # with `seeds`: the group summary (xares_llm/scoring/seed_groups.py)


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
    seeds: list[int] | None = None,
) -> PipelineResult:
    """Extract, train, evaluate and score. `run_dir` may be a function of the encoder-id, so the
    caller can name the run after it without loading the encoder a second time. The encoder computes
    in `encoder_precision` (fp32, the reference, unless fp16/bf16 autocast is asked for) on clips
    resampled by `resampler` (sinc, the reference's, or soxr) and stores frames as `dtype`
    (cache/dtypes.py). With `seeds`, `run_dir` is a seed group: one training and evaluation per seed
    in `<run_dir>/seed-<seed>/`, then `<run_dir>/seeds.json`."""
    hooks = hooks or Hooks()
    mix = load_mixture(mixture) if isinstance(mixture, str) else mixture
    tasks, splits = list(mix.tasks.values()), mixture_splits(mix)

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

    if callable(run_dir):  # named after the encoder-id, known once the encoder is loaded
        run_dir = run_dir(report.encoder_id)
    if seeds is None:
        trained, scores = train_eval_score(
            run_dir, recipe, mix, report.encoder_id, cache_root, encoder, device, hooks, metric_options, threads
        )
        return PipelineResult(report, trained, scores)
    runs = {seed: seed_run_dir(run_dir, seed) for seed in seeds}  # one extraction serves every seed
    results = {}
    for seed, path in runs.items():
        seeded = recipe.model_copy(update={"seed": seed})
        results[seed] = train_eval_score(
            path, seeded, mix, report.encoder_id, cache_root, encoder, device, hooks, metric_options, threads
        )
    group = write_group_summary(run_dir, runs) if world.main else None
    first = results[seeds[0]]
    return PipelineResult(report, first[0], first[1], {s: r[1] for s, r in results.items()}, group)


def mixture_splits(mix: Mixture) -> dict[str, list[Split]]:
    """The splits a mixture reads: train of the tasks it trains on, test of those it evaluates."""
    splits: dict[str, list[Split]] = {name: [] for name in mix.tasks}
    for name in mix.weights:
        splits[name].append("train")
    for name in mix.evaluate:
        splits[name].append("test")
    return splits


def train_eval_score(
    run_dir: Path,
    recipe: Recipe,
    mix: Mixture,
    encoder_id: str,
    cache_root: Path,
    encoder: str,
    device: str | None,
    hooks: Hooks | None = None,
    metric_options: MetricOptions | None = None,
    threads: int | None = None,
) -> tuple[TrainResult, Scores | None]:
    """Stage two for one run dir: train (resuming), evaluate, score; each stage's wall time goes to its cost file."""
    hooks, world = hooks or Hooks(), current_world()
    if hooks.stage and world.main:
        hooks.stage("train")
    info = read_run(run_dir)
    with stage_cost(run_dir, "training", device, world, skip=info is not None and info.finished):
        trained = train(run_dir, recipe, mix, encoder_id, cache_root, encoder, device, hooks.train, threads)
    if hooks.stage and world.main:
        hooks.stage("evaluate")
    done = {p.stem for p in (Path(run_dir) / PREDICTIONS_DIR).glob("*.jsonl")}
    with stage_cost(run_dir, "evaluation", device, world, skip=set(mix.evaluate) <= done):
        evaluate(run_dir, cache_root, device=device, progress=hooks.evaluate, threads=threads)
    if hooks.stage and world.main:
        hooks.stage("score")
    return trained, score_run(run_dir, metric_options) if world.main else None


@contextmanager
def stage_cost(run_dir: Path, stage: str, device: str | None, world: World, skip: bool = False) -> Iterator[None]:
    """Time a stage and append it to the run's cost file (rank 0, counting every rank's device);
    `skip` when it was complete already, so a rerun adds no entry (nor its device)."""
    started = time.perf_counter()
    try:
        yield
    finally:  # a failed or interrupted stage cost its time too; the resumed one adds its own entry
        if world.main and not skip and Path(run_dir).is_dir():  # a stage refused before its run dir exists cost nothing
            dev = resolve_device(device)
            record_stage(run_dir, stage, time.perf_counter() - started, world.size, dev.type, device_name(dev))
