"""`xares download`: pre-fetch the audio shards of tasks or mixtures, with a progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from xares_llm.cli.console import err, out
from xares_llm.cli.options import CacheOpt, DataOpt, write_cache
from xares_llm.constants import DOWNLOAD_WORKERS

if TYPE_CHECKING:
    from xares_llm.audio.download import Shard

TasksArg = Annotated[
    str,
    typer.Option("--tasks", help="Tasks or mixtures, comma-separated: task1, task2, all, or e.g. esc50,gtzan."),
]
SplitOpt = Annotated[str, typer.Option("--split", help="Splits to fetch: train, test or train,test.")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Shards downloaded at once.")]


def download(
    tasks: TasksArg,
    split: SplitOpt = "train,test",
    data: DataOpt = None,
    cache: CacheOpt = None,
    workers: WorkersOpt = DOWNLOAD_WORKERS,
) -> None:
    """Download only the shards the tasks need from the Hugging Face hub; present shards are skipped.

    Examples: `xares download --tasks task1`, `xares download --tasks esc50,gtzan --split test --data /data/xares`.
    """
    from xares_llm.audio.download import format_bytes, parse_splits, plan_download, run_download
    from xares_llm.audio.sources import default_data_root
    from xares_llm.tasks.schema import resolve_tasks

    data_root = data or default_data_root(write_cache(cache, "download"))
    plan = plan_download(resolve_tasks(tasks), parse_splits(split), data_root)
    if plan.local_only:
        err.print(f"generated locally, nothing to fetch: {', '.join(plan.local_only)}")
    missing, present = plan.missing, plan.present
    err.print(
        f"{len(plan.shards)} shards under {data_root}: {len(present)} present, "
        f"{len(missing)} to fetch ({format_bytes(plan.bytes_missing)})"
    )
    if missing:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err) as progress:
            bar = progress.add_task("downloading", total=plan.bytes_missing)

            def advance(shard: Shard, size: int) -> None:
                progress.update(bar, advance=plan.sizes.get(shard, size), description=shard.task)

            run_download(plan, workers=workers, on_done=advance)
    out.print(f"{len(plan.shards)} shards, {format_bytes(plan.bytes_on_disk())} on disk under {data_root}")
