"""`xares train`: stage two training from cached features; `xares train RUN_DIR` resumes a run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xares_llm.cli.console import err, out
from xares_llm.cli.options import (
    AutoDeviceOpt,
    CacheOpt,
    ConfigDirOpt,
    EncoderArgsOpt,
    ThreadsOpt,
    add_config_dirs,
    read_cache,
)
from xares_llm.cli.progress import TrainReporter, make_progress
from xares_llm.errors import XaresError

if TYPE_CHECKING:
    from xares_llm.lalm.recipe import Recipe

RecipeOpt = Annotated[str, typer.Option("--recipe", help="Packaged recipe (reference, t4, demo) or a YAML path.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe field, e.g. --set optim.lr=3e-4 (repeatable).", metavar="KEY=VALUE"),
]


def default_run_dir(encoder_id: str, mixture: str, recipe: Recipe) -> Path:
    """``runs/<encoder-id>-<mixture>-<recipe>-<hash>``: the hash covers every recipe value (steps and
    --set included), so two different runs never share a directory."""
    digest = hashlib.sha256(recipe.to_yaml().encode()).hexdigest()[:6]
    return Path("runs") / f"{encoder_id}-{mixture}-{recipe.name}-{digest}"


def train(
    encoder: Annotated[
        str,
        typer.Argument(
            help="An encoder spec, the id (or a unique prefix) of a store in the cache, or a run dir to resume.",
            metavar="ENCODER",
        ),
    ],
    mixture: Annotated[
        str | None, typer.Option("--mixture", help="Training mixture: task1, task2, all, demo or a YAML path.")
    ] = None,
    recipe: RecipeOpt = "reference",
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Run directory \\[default: runs/<id>-<mixture>-<recipe>-<hash>].")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps (overrides the recipe).")] = None,
    cache: CacheOpt = None,
    encoder_args: EncoderArgsOpt = None,
    set_: SetOpt = None,
    device: AutoDeviceOpt = None,
    threads: ThreadsOpt = None,
    log: Annotated[
        str | None,
        typer.Option(
            "--log", help="Also log to: tensorboard (event files in <run>/tensorboard; log.jsonl is always written)."
        ),
    ] = None,
    config_dir: ConfigDirOpt = None,
) -> None:
    """Train the projector + LLM on a task mixture from cached features (no audio, no encoder).

    Running it again on the same run dir resumes from the last checkpoint (`xares train RUN_DIR`
    needs no other flag); the run is marked finished only when its last step is done.

    Examples:

      xares train mel --mixture demo --recipe demo

      xares train whisper-base-1a2b3c --mixture task1 --recipe t4 --device cuda

      xares train mel --mixture demo --recipe demo --steps 200 --set optim.lr=1e-3

      xares train runs/mel-1a2b3c4d5e6f-demo-demo-0f3a2b       # resume

      torchrun --nproc_per_node 4 -m xares_llm.cli.main train whisper-base --mixture task1
    """
    from xares_llm.lalm.recipe import load_recipe, parse_overrides
    from xares_llm.lalm.runs import read_recipe, read_run
    from xares_llm.lalm.train_log import parse_log_kinds
    from xares_llm.tasks.schema import load_mixture
    from xares_llm.tasks.snapshots import read_run_mixture

    add_config_dirs(config_dir)
    log_kinds = parse_log_kinds(log)
    resumed = read_run(Path(encoder))
    if resumed is not None:  # a run dir: everything comes from it
        run_dir, resolved, mix = Path(encoder), read_recipe(Path(encoder)), read_run_mixture(Path(encoder))
        encoder, cache = resumed.encoder_id, cache or resumed.cache_root
    else:
        if mixture is None:
            raise typer.BadParameter("give the training mixture (e.g. --mixture demo), or a run dir to resume")
        overrides = parse_overrides(set_ or [])
        if steps is not None:
            overrides["steps"] = steps
        resolved = load_recipe(recipe, overrides)
        mix = load_mixture(mixture)
    from xares_llm.lalm.hub import require_recipe_models

    require_recipe_models(resolved)  # seconds, before any store or model is touched
    from xares_llm.distributed import current_world
    from xares_llm.lalm.train import resolve_store
    from xares_llm.lalm.train import train as run_train

    cache_root = read_cache(cache)
    encoder_id, spec = resolve_store(cache_root, encoder, encoder_args)
    run_dir = run_dir or default_run_dir(encoder_id, mix.name, resolved)
    err.print(
        f"run {run_dir}: encoder {encoder_id}, mixture {mix.name}, recipe {resolved.name}, {resolved.steps} steps",
        highlight=False,
        soft_wrap=True,
    )
    try:
        with make_progress() as progress:
            result = run_train(
                run_dir,
                resolved,
                mix,
                encoder_id,
                cache_root,
                spec,
                device,
                TrainReporter(progress, resolved.log_every),
                threads=threads,
                log_kinds=log_kinds,
            )
    except KeyboardInterrupt:
        info = read_run(run_dir)
        done = info.steps_done if info else 0
        raise XaresError(f"interrupted; checkpointed up to step {done}. Resume with: xares train {run_dir}") from None
    if not current_world().main:
        return  # under torchrun, rank 0 reports
    if result.resumed_from == result.steps_done and result.final_loss is None:
        out.print(f"already finished: {result.steps_done} steps in {run_dir}")
    else:
        loss = "" if result.final_loss is None else f", final loss {result.final_loss:.4f}"
        out.print(f"finished {result.steps_done} steps{loss}: {run_dir}")
    out.print(f"next: xares eval {run_dir}")
