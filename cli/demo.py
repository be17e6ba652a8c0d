"""`xares demo`: the whole pipeline offline on four synthetic tasks, in a few minutes on a CPU."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from xares_llm.audio.demo_data import write_demo_shards
from xares_llm.cli.console import err, out
from xares_llm.cli.options import AutoDeviceOpt, StoreDtypeOpt, ThreadsOpt
from xares_llm.cli.progress import make_progress, pipeline_hooks
from xares_llm.cli.render import print_scores
from xares_llm.lalm.recipe import load_recipe


def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="Where data, cache and run go.")] = Path("xares-demo"),
    device: AutoDeviceOpt = None,
    threads: ThreadsOpt = None,
    dtype: StoreDtypeOpt = "float16",
) -> None:
    """Write synthetic audio shards, extract them with `mel`, train a tiny LLM, evaluate, score.

    Needs no network. Rerunning continues or reuses what is done; delete WORKDIR to start over.

    Example:

      xares demo --workdir /tmp/xares-demo

      xares demo --workdir /tmp/xares-demo --dtype int8     # the same demo from a compact store
    """
    from xares_llm.pipeline import run_pipeline

    started = time.perf_counter()
    data_root, cache_root, run_dir = workdir / "data", workdir / "cache", workdir / "run"
    written = write_demo_shards(data_root)
    if written:
        err.print(f"wrote {len(written)} demo shards to {data_root}")
    recipe = load_recipe("demo")
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
    out.print(f"run dir {run_dir} ({time.perf_counter() - started:.0f} s); rescore with: xares score {run_dir}")
