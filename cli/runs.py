"""`xares runs`: the runs under a folder, with status, steps, encoder, mixture and overall score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from xares_llm.cli.console import out
from xares_llm.errors import XaresError
from xares_llm.lalm.runs import find_runs


def list_runs(
    root: Annotated[Path, typer.Argument(help="Folder holding run dirs.", metavar="DIR")] = Path("runs"),
) -> None:
    """List the runs under DIR (default ./runs).

    Example: `xares runs`, `xares runs /data/xares-runs`.
    """
    if not root.is_dir():
        raise XaresError(f"{root} is not a folder; runs are made by `xares train` and `xares run`")
    table = Table(title=f"Runs under {root}", title_justify="left")
    for column in ("run", "status", "steps", "encoder", "mixture", "overall"):
        table.add_column(column, justify="right" if column in ("steps", "overall") else "left")
    for run_dir, info in find_runs(root):
        scores = run_dir / "scores.json"
        overall = f"{json.loads(scores.read_text())['overall']:.4f}" if scores.is_file() else ""
        steps = f"{info.steps_done}/{info.steps}"
        table.add_row(str(run_dir.relative_to(root)), info.status, steps, info.encoder_id, info.mixture, overall)
    out.print(table)
