"""`xares report`: runs and probe outputs as columns, with 95 % bootstrap intervals, figures and exports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xares_llm.cli.console import Listing, err, out
from xares_llm.cli.options import CacheOpt
from xares_llm.cli.score import EcheckerOpt, SbertOpt, metric_options
from xares_llm.errors import XaresError

if TYPE_CHECKING:
    from xares_llm.report.tables import Report


def report(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run dirs (with scores.json), seed groups (with seeds.json) or probe outputs.")
    ],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write report.{md,csv,html} and figures/*.png here.")
    ] = None,
    baselines: Annotated[
        bool, typer.Option("--baselines", help="Add the published baselines and the challenge's best/median.")
    ] = False,
    formats: Annotated[str, typer.Option("--format", help="Files to write into --out: md, csv, html.")] = "md,csv,html",
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed: equal seeds give equal intervals.")] = 0,
    resamples: Annotated[
        int, typer.Option("--resamples", help="Bootstrap resamples of the test clips.", min=10)
    ] = 1000,
    sbert: SbertOpt = None,
    echecker: EcheckerOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Compare runs: tasks by track and domain, track means, 95 % intervals; two runs add their paired difference.

    Intervals resample the test clips (seeded); corpus metrics are recomputed on each resample from
    the per-clip statistics `xares score` saved (runs scored before they were saved recompute them,
    so caption tasks then load their sentence models). Track means, and the baseline means beside
    them, are over the same tasks.

    Examples:

      xares report runs/mel-demo runs/whisper-demo --out report/

      xares report runs/whisper-base-task1-reference --baselines --format md

      xares report runs/mel-demo-demo-1a2b3c    # a seed group: mean ± sd and an interval over seeds and clips
    """
    missing = next((p for p in run_dirs if not p.is_dir()), None)
    if missing is not None:  # before numpy and the metrics load
        raise XaresError(f"{missing}: no such directory; give run dirs (with scores.json) or probe outputs")
    from xares_llm.report import parse_formats, write_report
    from xares_llm.report.load import load_result_dir, unique_labels
    from xares_llm.report.seeds import expand_group_dirs
    from xares_llm.report.tables import build_report

    chosen = parse_formats(formats)
    results = [load_result_dir(p) for p in expand_group_dirs(run_dirs)]
    unique_labels(results)
    options = metric_options(sbert, echecker, cache)
    built = build_report(results, baselines, baselines, seed, resamples, options)
    out.print(report_table(built))
    for group in built.seed_groups:
        out.print(seed_group_table(group))
    if out_dir is not None:
        written = write_report(built, results, out_dir, chosen)
        err.print(f"wrote {len(written)} files to {out_dir}")


def report_table(report: Report) -> Listing:
    from xares_llm.report.formats import footnotes, headers, text_cells

    table = Listing(title="Report", title_justify="left")
    for i, column in enumerate(headers(report)):
        table.add_column(column.replace("-", "-\n") if i >= 4 else column, justify="left" if i < 4 else "right")
    previous = None
    for row in report.rows:
        if previous is not None and (row.kind != "task") != (previous.kind != "task"):
            table.add_section()  # around each block of means
        table.add_row(*text_cells(report, row), style="bold" if row.kind != "task" else None)
        previous = row
    table.caption = "\n".join(footnotes(report))
    table.caption_justify = "left"
    return table


def seed_group_table(group) -> Listing:
    """A seed group: mean ± sd [interval over seeds and clips], each seed's score, the cost."""
    from xares_llm.report.seeds import seed_text

    table = Listing(title=f"Seed group {group.label}", title_justify="left")
    table.add_column("task")
    table.add_column("mean ± sd [95 %]", justify="right", style="bold")
    for seed in group.seeds:
        table.add_column(f"seed {seed}", justify="right")
    for row in group.rows:
        digits = 4 if row.kind == "cost" else 3
        table.add_row(row.label, seed_text(row), *(f"{s:.{digits}f}" for s in row.scores))
    reference = group.reference or "none"
    table.caption = f"reference seed run: {reference}; sd over seeds (n - 1); interval pools each seed's clip resamples"
    table.caption_justify = "left"
    return table
