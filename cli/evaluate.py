"""`xares eval`: decode every test clip of a trained run, then score it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cache.root import cache_root_of
from xares_llm.cli.options import AutoDeviceOpt, ConfigDirOpt, ThreadsOpt, add_config_dirs
from xares_llm.cli.progress import EvalReporter, make_progress
from xares_llm.cli.render import print_scores
from xares_llm.cli.score import EcheckerOpt, SbertOpt, metric_options
from xares_llm.errors import XaresError


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `xares train`.")],
    tasks: Annotated[
        str | None, typer.Option("--tasks", help="Tasks to evaluate \\[default: the run's mixture].")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Clips per decoding batch.")] = None,
    cache: Annotated[
        str | None,
        typer.Option(
            "--cache",
            help="Feature cache root, a folder or an fsspec URL \\[default: the cache the run trained from].",
            show_default=False,
        ),
    ] = None,
    device: AutoDeviceOpt = None,
    allow_unfinished: Annotated[bool, typer.Option(help="Evaluate the last checkpoint of an unfinished run.")] = False,
    redo: Annotated[bool, typer.Option(help="Decode again even where predictions exist.")] = False,
    sbert: SbertOpt = None,
    echecker: EcheckerOpt = None,
    threads: ThreadsOpt = None,
    config_dir: ConfigDirOpt = None,
) -> None:
    """Greedy-decode every test clip, write predictions/<task>.jsonl, then score them.

    Examples:

      xares eval runs/mel-1a2b3c4d5e6f-demo-demo

      xares eval RUN --tasks esc50,gtzan --batch-size 16 --device cuda
    """
    if not (run_dir / "run.json").is_file():  # before torch loads: this answer takes no time
        raise XaresError(
            f"{run_dir} is not a training run (no run.json); `xares runs` lists the runs under ./runs, "
            "`xares train` starts one"
        )
    from xares_llm.lalm.evaluate import evaluate as run_evaluate

    add_config_dirs(config_dir)
    from xares_llm.scoring.score import score_run

    names = [t.strip() for t in tasks.split(",")] if tasks else None
    cache_root = None if cache is None else cache_root_of(cache)
    with make_progress() as progress:
        run_evaluate(
            run_dir,
            cache_root,  # None: the cache the run trained from
            tasks=names,
            batch_size=batch_size,
            device=device,
            allow_unfinished=allow_unfinished,
            redo=redo,
            progress=EvalReporter(progress),
            threads=threads,
        )
    from xares_llm.distributed import current_world

    if not current_world().main:
        return  # under torchrun, rank 0 merged the predictions and scores them
    print_scores(score_run(run_dir, metric_options(sbert, echecker, cache_root)), run_dir)
