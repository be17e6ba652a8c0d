"""`xares runs`: the runs under a folder, with status, steps, encoder, mixture and overall score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from xares_llm.cli.console import Listing, out, print_json
from xares_llm.cli.options import JsonOpt
from xares_llm.errors import XaresError

COLUMNS = ("run", "status", "steps", "encoder", "mixture", "overall")


def run_rows(root: Path) -> list[dict]:
    """One dict per run dir under `root`; a `running` run whose process is gone reads `stale`."""
    from xares_llm.lalm.runs import find_runs, live_status

    rows = []
    for run_dir, info in find_runs(root):
        scores = run_dir / "scores.json"
        overall = json.loads(scores.read_text())["overall"] if scores.is_file() else None
        rows.append(
            {
                "run": str(run_dir.relative_to(root)),
                "path": str(run_dir),
                "status": live_status(run_dir, info),
                "steps_done": info.steps_done,
                "steps": info.steps,
                "encoder_id": info.encoder_id,
                "encoder_spec": info.encoder_spec,
                "mixture": info.mixture,
                "overall": overall,
                "stopped": info.stopped,
                "created": info.created,
            }
        )
    return rows


def list_runs(
    root: Annotated[Path, typer.Argument(help="Folder holding run dirs.", metavar="DIR")] = Path("runs"),
    as_json: JsonOpt = False,
) -> None:
    """List the runs under DIR (default ./runs).

    `stale` is a run recorded as running whose process is gone (killed before it could say so);
    `interrupted` and `failed` runs resume with `xares train RUN_DIR`.

    Example: `xares runs`, `xares runs /data/xares-runs`, `xares runs --json`.
    """
    if not root.is_dir():
        raise XaresError(
            f"{root} is not a folder; runs are made by `xares train` and `xares run` (under ./runs by default)"
        )
    rows = run_rows(root)
    if as_json:
        print_json(rows)
        return
    table = Listing(title=f"Runs under {root}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("steps", "overall") else "left")
    for row in rows:
        overall = "" if row["overall"] is None else f"{row['overall']:.4f}"
        steps = f"{row['steps_done']}/{row['steps']}"
        table.add_row(escape(row["run"]), row["status"], steps, row["encoder_id"], row["mixture"], overall)
    out.print(table)
