"""`xares demo`: the whole pipeline offline on four synthetic tasks, in a few minutes on a CPU."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cli.console import err, out
from xares_llm.cli.options import AutoDeviceOpt, StoreDtypeOpt, ThreadsOpt
from xares_llm.cli.progress import make_progress, pipeline_hooks


def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="Where data, cache and run go.")] = Path("xares-demo"),
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            envvar="XARES_DEMO_STEPS",
            min=1,
            help="Training steps, for a quicker look \\[default: the demo recipe's 1200; also $XARES_DEMO_STEPS].",
            show_default=False,
        ),
    ] = None,
    device: AutoDeviceOpt = None,
    threads: ThreadsOpt = None,
    dtype: StoreDtypeOpt = "float16",
) -> None:
    """Write synthetic audio shards, extract them with `mel`, train a tiny LLM, evaluate, score.

    Needs no network. Everything goes under WORKDIR: data/ (audio shards), cache/ (the feature
    store) and run/ (the training run). Rerunning continues or reuses what is done; delete WORKDIR
    to start over. It ends with three commands to try next on its store and run.

    Example:

      xares demo --workdir /tmp/xares-demo

      xares demo --workdir /tmp/xares-demo --dtype int8     # the same demo from a compact store
    """
    from xares_llm.audio.demo_data import write_demo_shards
    from xares_llm.cli.render import print_scores
    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.pipeline import run_pipeline

    started = time.perf_counter()
    recipe = load_recipe("demo", {} if steps is None else {"steps": steps})
    run_name = "run" if steps is None else f"run-{steps}steps"  # another recipe: another run dir
    data_root, cache_root, run_dir = workdir / "data", workdir / "cache", workdir / run_name
    written = write_demo_shards(data_root)
    if written:
        err.print(f"wrote {len(written)} demo shards to {data_root}")
    with make_progress() as progress:
        result = run_pipeline(
            "mel",
            "demo",
            recipe,
            cache_root,
            data_root,
            run_dir,
            device=device,
            dtype=dtype,
            hooks=pipeline_hooks(progress, recipe.log_every),
            threads=threads,
        )
    print_scores(result.scores, run_dir)
    out.print(
        f"done in {time.perf_counter() - started:.0f} s. Under {workdir}: data/ (audio shards), cache/ (the feature "
        f"store {result.extract.encoder_id}), {run_name}/ (the run). Commands that read them need "
        f"--cache {cache_root} (or XARES_CACHE={cache_root}).",
        highlight=False,
        soft_wrap=True,
    )
    out.print("next, try: the run's status; light probe heads on the same store (seconds); both side by side:")
    for command in next_commands(workdir, cache_root, run_dir, result.extract.encoder_id):
        out.print(f"  {command}", highlight=False, soft_wrap=True)


def next_commands(workdir: Path, cache_root: Path, run_dir: Path, encoder_id: str) -> list[str]:
    """Three commands on the demo's own store and run, each working as printed from the same folder."""
    probes = Path("probes") / f"{encoder_id}-demo"
    return [
        f"xares runs {workdir}",
        f"xares probe {encoder_id} --tasks demo --cache {cache_root}",
        f"xares report {run_dir} {probes} --out {workdir / 'report'}",
    ]
