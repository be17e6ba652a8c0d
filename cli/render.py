"""Rich renderings shared by several commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from xares_llm.baselines import baseline_mean

if TYPE_CHECKING:
    from xares_llm.scoring import Scores


def scores_table(scores: Scores, baselines: dict[str, dict[str, float]] | None = None) -> Table:
    """One row per task, then each track's mean and the overall mean; optional baseline columns."""
    table = Table(title="Scores", title_justify="left")
    for column in ("task", "track", "metric", "samples"):
        table.add_column(column)
    table.add_column("score", justify="right", style="bold")
    names = list(baselines or {})
    for name in names:
        table.add_column(name.replace("-", "\n"), justify="right", style="dim")
    unofficial = False
    for s in scores.tasks.values():
        marker = "" if s.settings.get("official", True) else " *"
        unofficial |= bool(marker)
        extra = [_fmt(baselines[n].get(s.task)) for n in names]
        table.add_row(s.task, s.track, s.metric, str(s.n_samples), f"{s.score:.3f}{marker}", *extra)
    table.add_section()
    for track, value in scores.tracks.items():
        # Baseline means over the tasks this run scored, never the published full-track means.
        tasks = [s.task for s in scores.tasks.values() if s.track == track]
        extra = [_fmt(baseline_mean(baselines[n], tasks)) for n in names]
        table.add_row(f"mean {track}", track, "", "", f"{value:.3f}", *extra)
    table.add_row("overall", "", "", "", f"{scores.overall:.3f}")
    notes = ["* scored with substitute models or without the error checker (see scores.json)"] if unofficial else []
    if scores.differences:
        more = f" (and {len(scores.differences) - 1} more in scores.json)" if len(scores.differences) > 1 else ""
        notes.append(f"not comparable with the reference system: {scores.differences[0]}{more}")
    table.caption = "\n".join(notes) or None
    table.caption_justify = "left"
    return table


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
