"""`xares tasks`: the tasks and training mixtures as Rich tables; `xares tasks new` scaffolds a task."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from xares_llm.cli.console import Listing, out, print_json
from xares_llm.cli.options import ConfigDirOpt, JsonOpt, add_config_dirs

if TYPE_CHECKING:
    from xares_llm.tasks.catalog import MixtureSummary, TaskSummary


def list_tasks(
    ctx: typer.Context,
    prompts: Annotated[bool, typer.Option("--prompts", help="Show each task's prompt, verbatim, instead.")] = False,
    config_dir: ConfigDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the tasks (track, metric, shard counts, dataset) and the mixtures' normalised weights.

    Examples: `xares tasks`, `xares tasks --prompts`, `xares tasks --json`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from xares_llm.tasks.catalog import mixture_summaries, task_summaries

    add_config_dirs(config_dir)
    summaries = task_summaries()
    if as_json:
        print_json({"tasks": [asdict(t) for t in summaries], "mixtures": [asdict(m) for m in mixture_summaries()]})
        return
    if prompts:
        out.print(prompt_table(summaries))
        return
    out.print(task_table(summaries))
    out.print(mixture_table(mixture_summaries(), [t.name for t in summaries]))


def new(
    name: Annotated[str, typer.Argument(help="Task name: lower case, digits and _.", metavar="NAME")],
    train: Annotated[str, typer.Option("--train", help="Train shards, a glob such as 'DIR/train/*.tar'.")],
    test: Annotated[str, typer.Option("--test", help="Test shards, a glob such as 'DIR/test/*.tar'.")],
    label_key: Annotated[
        str | None, typer.Option("--label-key", help="The json key holding the label (omit to list the keys).")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="A metric name: accuracy, map, iwer, icer, fense, date or a plugin's "
            "\\[default: guessed from the labels].",
        ),
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="The instruction given to the LLM.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Task YAML to write \\[default: ./NAME.yaml].")] = None,
) -> None:
    """Write a task YAML (and a one-task mixture beside it) for your own WebDataset shards.

    Reads the shards' json, guesses the metric from the labels (';'-joined -> map, a small label set
    -> accuracy, free text -> iwer) and counts shards and clips.

    Examples:

      xares tasks new birds --train 'data/birds/train/*.tar' --test 'data/birds/test/*.tar'

      xares tasks new birds --train 'data/birds/train/*.tar' --test 'data/birds/test/*.tar' --label-key species
    """
    from xares_llm.tasks.scaffold import new_task, write_task

    task, train_survey, test_survey = new_task(name, train, test, label_key, metric, prompt)
    path = out_file or Path(f"{name}.yaml")
    mixture = write_task(task, path)
    args = ", ".join(f"{k}={v}" for k, v in task.metric.args.items())
    out.print(
        f"{path}: {len(train_survey.shards)} train shards ({train_survey.clips} clips), "
        f"{len(test_survey.shards)} test shards ({test_survey.clips} clips); "
        f"metric {task.metric.name}{f' ({args})' if args else ''}",
        highlight=False,
        soft_wrap=True,
    )
    for split, survey in (("train", train_survey), ("test", test_survey)):
        for reason, count in survey.dropped.most_common():
            out.print(f"{split}: {count} samples left out, their json: {reason}", highlight=False, soft_wrap=True)
    next_step = f"{mixture}: a mixture of this task alone; next: xares run mel --mixture {mixture} --recipe demo"
    out.print(next_step, highlight=False, soft_wrap=True)


def task_table(rows: list[TaskSummary]) -> Listing:
    table = Listing(title="Tasks", title_justify="left")
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


def prompt_table(rows: list[TaskSummary]) -> Listing:
    """Each task's instruction string exactly as the LLM sees it (quoted, so spaces show)."""
    table = Listing(title="Prompts", title_justify="left")
    table.add_column("task", style="bold")
    table.add_column("track")
    table.add_column("prompt")
    for row in rows:
        table.add_row(row.name, row.track, escape(f'"{row.prompt}"'))
    return table


def mixture_table(mixtures: list[MixtureSummary], task_order: list[str]) -> Listing:
    """Tasks down, mixtures across; a cell is the task's normalised training weight in that mixture."""
    table = Listing(
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
