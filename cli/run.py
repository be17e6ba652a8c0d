"""`xares run`: the whole benchmark for one encoder and track, resumable stage by stage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xares_llm.cli.console import out
from xares_llm.cli.launch import (
    AccountOpt,
    ArrayOpt,
    ClusterProfileOpt,
    DryRunOpt,
    FollowOpt,
    GpusOpt,
    LauncherOpt,
    PartitionOpt,
    TimeOpt,
    check_launcher,
    cluster_flags,
    launch_run,
)
from xares_llm.cli.options import (
    AutoDeviceOpt,
    CacheOpt,
    ConfigDirOpt,
    DataOpt,
    EncoderArg,
    EncoderArgsOpt,
    EncoderPrecisionOpt,
    ResamplerOpt,
    StoreDtypeOpt,
    ThreadsOpt,
    add_config_dirs,
    write_cache,
)
from xares_llm.cli.progress import make_progress, pipeline_hooks
from xares_llm.cli.render import print_scores
from xares_llm.cli.score import EcheckerOpt, SbertOpt, metric_options
from xares_llm.cli.train import RecipeOpt, SetOpt, default_run_dir
from xares_llm.constants import TRACK_MIXTURES
from xares_llm.errors import XaresError
from xares_llm.scoring.baselines import BASELINES

if TYPE_CHECKING:
    from xares_llm.lalm.recipe import Recipe
    from xares_llm.tasks.schema import Mixture


def run(
    encoder: EncoderArg,
    track: Annotated[
        str | None, typer.Option("--track", help="A (15 closed-set tasks), B (5 open-set tasks) or all.")
    ] = None,
    mixture: Annotated[
        str | None, typer.Option("--mixture", help="Instead of --track: a mixture name or YAML path.")
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks",
            help="Instead of --track: one task or a comma list; each is trained alone with the reference's "
            "single-task step count (esc50: 2000, ...) and evaluated: a cheap preview.",
        ),
    ] = None,
    recipe: RecipeOpt = "reference",
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps (overrides the recipe).")] = None,
    data: DataOpt = None,
    cache: CacheOpt = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Run directory \\[default: runs/...].")] = None,
    encoder_args: EncoderArgsOpt = None,
    encoder_precision: EncoderPrecisionOpt = "fp32",
    resampler: ResamplerOpt = "sinc",
    dtype: StoreDtypeOpt = "float16",
    set_: SetOpt = None,
    device: AutoDeviceOpt = None,
    sbert: SbertOpt = None,
    echecker: EcheckerOpt = None,
    threads: ThreadsOpt = None,
    config_dir: ConfigDirOpt = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Train and evaluate N seeds (42, 43, ...) over one extraction.")
    ] = None,
    seed: Annotated[
        str | None, typer.Option("--seed", help="Instead of --seeds: the seeds, comma-separated (42,43,44).")
    ] = None,
    launcher: LauncherOpt = "local",
    dry_run: DryRunOpt = False,
    cluster_profile: ClusterProfileOpt = None,
    partition: PartitionOpt = None,
    account: AccountOpt = None,
    array: ArrayOpt = None,
    gpus: GpusOpt = None,
    time_min: TimeOpt = None,
    follow: FollowOpt = True,
) -> None:
    """Extract what is missing, train on the track's mixture, evaluate and score.

    Every stage skips what is complete, so running the same command again after an interruption
    continues. The final table puts the scores beside the published baselines.

    Examples:

      xares run whisper-base --track A --recipe t4 --device cuda

      xares run whisper-base --tasks esc50,cremad     # two single-task previews, 2000 and 1000 steps

      xares run my_encoder.py --track B --data /data/xares_llm_data

      xares run mel --mixture my_mixture.yaml --recipe demo --steps 500

      xares run whisper-base --track A --seeds 3      # runs/<...>/seed-42, seed-43, seed-44 and seeds.json

      xares run whisper-base --track A --seeds 3 --launcher slurm --run-dir runs/wb-A --cluster-profile c.yaml
    """
    if sum(x is not None for x in (track, mixture, tasks)) != 1:
        raise typer.BadParameter("give exactly one of --track (A, B, all), --mixture or --tasks", param_hint="--track")
    if track is not None:
        if track not in TRACK_MIXTURES:
            raise typer.BadParameter(f"use one of {', '.join(TRACK_MIXTURES)}", param_hint="--track")
        mixture = TRACK_MIXTURES[track]
    from xares_llm.scoring.seed_groups import parse_seeds

    seed_list = parse_seeds(seeds, seed)
    cache_root = write_cache(cache, "run")
    from xares_llm.audio.sources import default_data_root
    from xares_llm.lalm.recipe import load_recipe, parse_overrides
    from xares_llm.pipeline import run_pipeline

    add_config_dirs(config_dir)
    overrides = parse_overrides(set_ or [])
    if steps is not None:
        overrides["steps"] = steps
    plans = [(mixture, load_recipe(recipe, overrides))] if mixture else single_task_plans(tasks, recipe, overrides)
    if run_dir is not None and len(plans) > 1:
        raise typer.BadParameter("--run-dir names one run; --tasks with several tasks makes one run each")
    from xares_llm.lalm.hub import require_recipe_models

    require_recipe_models(plans[0][1])  # seconds, not after an hour of extraction
    if launcher != "local" or dry_run:
        seed_list = seed_list or [plans[0][1].seed]  # one run: the recipe's seed, in a group of one
        spec = launch_spec(launcher, encoder, mixture, recipe, overrides, cache_root, data, run_dir, seed_list)
        spec.encoder_args, spec.encoder_precision, spec.dtype = encoder_args, encoder_precision, dtype
        spec.device, spec.threads, spec.resampler = device, threads, resampler
        flags = cluster_flags(partition, account, array, gpus, time_min)
        launch_run(spec, launcher, cluster_profile, flags, dry_run, follow)
        return
    try:
        for planned_mixture, resolved in plans:
            name = planned_mixture if isinstance(planned_mixture, str) else planned_mixture.name
            with make_progress() as progress:
                result = run_pipeline(
                    encoder,
                    planned_mixture,
                    resolved,
                    cache_root,
                    data or default_data_root(cache_root),
                    run_dir
                    or (lambda encoder_id, name=name, r=resolved: default_run_dir(encoder_id, Path(name).stem, r)),
                    encoder_args=encoder_args,
                    encoder_precision=encoder_precision,
                    resampler=resampler,
                    dtype=dtype,
                    device=device,
                    metric_options=metric_options(sbert, echecker, cache_root),
                    hooks=pipeline_hooks(progress, resolved.log_every),
                    threads=threads,
                    seeds=seed_list,
                )
            if result.scores is None:
                continue  # another rank of a torchrun launch: rank 0 reports
            if result.group is not None:  # the mean and sd over the seeds; each seed's own scores.json has its table
                from xares_llm.cli.render_seeds import seeds_table

                out.print(seeds_table(result.group))
                out.print(f"seed group: {result.train.run_dir.parent}")
                continue
            print_scores(result.scores, result.train.run_dir, BASELINES)
            out.print(f"run dir: {result.train.run_dir}")
    except KeyboardInterrupt:
        raise XaresError(
            "interrupted; every stage keeps what it finished: rerun the same command to continue"
        ) from None


def launch_spec(launcher, encoder, mixture, recipe, overrides, cache_root, data, run_dir, seeds):
    """What every job of a launch repeats; one mixture and an explicit --run-dir (the seed group)."""
    from xares_llm.audio.sources import default_data_root
    from xares_llm.launch.plan import RunSpec

    check_launcher(launcher)
    if not isinstance(mixture, str):
        raise typer.BadParameter("a launch runs one mixture: use --track or --mixture", param_hint="--tasks")
    if run_dir is None:
        raise typer.BadParameter("a launch needs --run-dir: the seed group's folder on shared storage")
    data_root = data or default_data_root(cache_root)
    return RunSpec(
        encoder, mixture, recipe, overrides, str(cache_root.resolve()), str(Path(data_root).resolve()),
        run_dir.resolve(), seeds,
    )  # fmt: skip


def single_task_plans(names: str, recipe: str, overrides: dict) -> list[tuple[Mixture, Recipe]]:
    """One single-task mixture per task, each with the reference's step count unless --steps is given."""
    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.scoring.reference import SINGLE_TASK_STEPS
    from xares_llm.scoring.single_task import single_task_view
    from xares_llm.tasks.schema import resolve_tasks, single_task_mixture

    plans = []
    for task in resolve_tasks(names):
        task_overrides = dict(overrides)
        if "steps" not in task_overrides and task.name in SINGLE_TASK_STEPS:
            task_overrides["steps"] = SINGLE_TASK_STEPS[task.name]
        plans.append((single_task_mixture(single_task_view(task)), load_recipe(recipe, task_overrides)))
    return plans
