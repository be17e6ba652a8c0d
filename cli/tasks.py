"""`xares tasks`: the packaged tasks and training mixtures as Rich tables."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from xares_llm.catalog import MixtureSummary, TaskSummary, mixture_summaries, task_summaries
from xares_llm.cli.console import out
from xares_llm.cli.options import ConfigDirOpt
from xares_llm.config import add_config_dirs


def list_tasks(
    prompts: Annotated[bool, typer.Option("--prompts", help="Show each task's prompt, verbatim, instead.")] = False,
    config_dir: ConfigDirOpt = None,
) -> None:
    """List the tasks (track, metric, shard counts, dataset) and the mixtures' normalised weights.

    Examples: `xares tasks`, `xares tasks --prompts`.
    """
    add_config_dirs(config_dir)
    summaries = task_summaries()
    if prompts:
        out.print(prompt_table(summaries))
        return
    out.print(task_table(summaries))
    out.print(mixture_table(mixture_summaries(), [t.name for t in summaries]))


def task_table(rows: list[TaskSummary]) -> Table:
    table = Table(title="Tasks", title_justify="left")
    table.add_column("task", style="bold")
    table.add_column("track")
    table.add_column("metric")
    table.add_column("train shards", justify="right")
    table.add_column("test shards", justify="right")
    table.add_column("dataset")
    table.add_column("repo")
    for row in rows:
        table.add_row(
            row.name,
            row.track,
            row.metric,
            str(row.train_shards),
            str(row.test_shards),
            " ".join(row.folders),
            row.repo or "[dim]local (generated)[/dim]",
        )
    return table


def prompt_table(rows: list[TaskSummary]) -> Table:
    """Each task's instruction string exactly as the LLM sees it (quoted, so spaces show)."""
    table = Table(title="Prompts", title_justify="left")
    table.add_column("task", style="bold")
    table.add_column("track")
    table.add_column("prompt")
    for row in rows:
        table.add_row(row.name, row.track, escape(f'"{row.prompt}"'))
    return table


def mixture_table(mixtures: list[MixtureSummary], task_order: list[str]) -> Table:
    """Tasks down, mixtures across; a cell is the task's normalised training weight in that mixture."""
    table = Table(
        title="Mixtures: normalised training weights",
        title_justify="left",
        caption="* by_shards: the task's share of the mixture's train shards. Each column sums to 1.",
        caption_justify="left",
    )
    table.add_column("task", style="bold")
    for mixture in mixtures:
        table.add_column(mixture.name, justify="right")
    used = {t for m in mixtures for t in (*m.weights, *m.evaluate)}
    for task in [t for t in task_order if t in used]:
        table.add_row(task, *(weight_cell(m, task) for m in mixtures))
    table.add_section()
    table.add_row("evaluates", *(f"{len(m.evaluate)} tasks" for m in mixtures))
    return table


def weight_cell(mixture: MixtureSummary, task: str) -> str:
    if task not in mixture.weights:
        return "[dim]eval only[/dim]" if task in mixture.evaluate else ""
    text = f"{mixture.weights[task]:.4f}" + ("*" if task in mixture.by_shards else " ")
    return text if task in mixture.evaluate else f"{text} [dim](not evaluated)[/dim]"
