"""`xares jobs`: the jobs a launch submitted, their attempts, outcome and the scheduler's state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cli.console import Listing, out
from xares_llm.errors import XaresError


def jobs(
    group: Annotated[Path, typer.Argument(help="The seed group's folder (--run-dir of the launch).", metavar="DIR")],
) -> None:
    """List the jobs of a `xares run --launcher ...` launch: plan name, job id, attempt, outcome, state.

    Example: `xares jobs runs/whisper-base-A`.
    """
    from xares_llm.launch.state import live_states, read_state

    state = read_state(group)
    if state is None:
        raise XaresError(f"{group}: no jobs/jobs.json; jobs are recorded by `xares run --launcher slurm`")
    live = live_states(state)
    table = Listing(title=f"Jobs of {group} ({state.launcher})", title_justify="left")
    for column in ("job", "id", "attempt", "outcome", "scheduler", "message"):
        table.add_column(column)
    for record in state.jobs:
        table.add_row(
            record.label, record.job_id, str(record.attempt), record.status, live.get(record.job_id, ""), record.message
        )
    out.print(table)
