"""`xares train`: stage two training from cached features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cli.console import err, out
from xares_llm.cli.options import AutoDeviceOpt, CacheOpt, ConfigDirOpt, EncoderArgsOpt
from xares_llm.cli.progress import TrainReporter, make_progress
from xares_llm.config import add_config_dirs
from xares_llm.recipe import load_recipe, parse_overrides
from xares_llm.sources import default_cache_root
from xares_llm.tasks import load_mixture

RecipeOpt = Annotated[str, typer.Option("--recipe", help="Packaged recipe (reference, t4, demo) or a YAML path.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe field, e.g. --set optim.lr=3e-4 (repeatable).")
]


def default_run_dir(encoder_id: str, mixture: str, recipe: str) -> Path:
    return Path("runs") / f"{encoder_id}-{mixture}-{Path(recipe).stem}"


def train(
    encoder: Annotated[
        str, typer.Argument(help="An encoder spec, or the id (or unique id prefix) of a store in the cache.")
    ],
    mixture: Annotated[
        str, typer.Option("--mixture", help="Training mixture: task1, task2, all, demo or a YAML path.")
    ],
    recipe: RecipeOpt = "reference",
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Run directory \\[default: runs/<id>-<mixture>-<recipe>].")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps (overrides the recipe).")] = None,
    cache: CacheOpt = None,
    encoder_args: EncoderArgsOpt = None,
    set_: SetOpt = None,
    device: AutoDeviceOpt = None,
    config_dir: ConfigDirOpt = None,
) -> None:
    """Train the projector + LLM on a task mixture from cached features (no audio, no encoder).

    Running it again on the same run dir resumes from the last checkpoint; the run is marked
    finished only when its last step is done.

    Examples:

      xares train mel --mixture demo --recipe demo

      xares train whisper-base-1a2b3c --mixture task1 --recipe t4 --device cuda

      xares train mel --mixture demo --recipe demo --steps 200 --set optim.lr=1e-3

      torchrun --nproc_per_node 4 -m xares_llm.cli.main train whisper-base --mixture task1
    """
    from xares_llm.distributed import current_world

    add_config_dirs(config_dir)
    from xares_llm.train import resolve_store
    from xares_llm.train import train as run_train

    cache_root = cache or default_cache_root()
    overrides = parse_overrides(set_ or [])
    if steps is not None:
        overrides["steps"] = steps
    resolved = load_recipe(recipe, overrides)
    mix = load_mixture(mixture)
    encoder_id, spec = resolve_store(cache_root, encoder, encoder_args)
    run_dir = run_dir or default_run_dir(encoder_id, mix.name, recipe)
    err.print(
        f"run {run_dir}: encoder {encoder_id}, mixture {mix.name}, recipe {resolved.name}, {resolved.steps} steps"
    )
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
        )
    if not current_world().main:
        return  # under torchrun, rank 0 reports
    if result.resumed_from:
        err.print(f"resumed from step {result.resumed_from}")
    loss = "" if result.final_loss is None else f", final loss {result.final_loss:.4f}"
    out.print(f"finished {result.steps_done} steps{loss}: {run_dir}")
    out.print(f"next: xares eval {run_dir}")
