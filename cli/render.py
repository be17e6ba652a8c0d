"""Rich renderings shared by several commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from xares_llm.baselines import baseline_mean

if TYPE_CHECKING:
    from xares_llm.scoring import Scores

SCORE_DECIMALS = 4  # mecat rounds FENSE and DATE to 4 decimals; the published baselines have 3


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
        table.add_row(s.task, s.track, s.metric, str(s.n_samples), f"{s.score:.{SCORE_DECIMALS}f}{marker}", *extra)
    table.add_section()
    for track, value in scores.tracks.items():
        # Baseline means over the tasks this run scored, never the published full-track means.
        tasks = [s.task for s in scores.tasks.values() if s.track == track]
        extra = [_fmt(baseline_mean(baselines[n], tasks)) for n in names]
        table.add_row(f"mean {track}", track, "", "", f"{value:.{SCORE_DECIMALS}f}", *extra)
    table.add_row("overall", "", "", "", f"{scores.overall:.{SCORE_DECIMALS}f}")
    used = dict.fromkeys(s.metric for s in scores.tasks.values())
    words = "; ".join(f"{m} = {METRIC_WORDS[m]}" for m in used if m in METRIC_WORDS)
    notes = [f"every score: higher is better, 1 is perfect. {words}".rstrip(". ")]
    if unofficial:
        notes.append("* scored with substitute models or without the error checker (see scores.json)")
    if scores.differences:
        more = f" (and {len(scores.differences) - 1} more in scores.json)" if len(scores.differences) > 1 else ""
        notes.append(f"not comparable with the reference system: {scores.differences[0]}{more}")
    table.caption = "\n".join(notes) or None
    table.caption_justify = "left"
    return table


METRIC_WORDS = {
    "accuracy": "share of exact answers",
    "map": "mean average precision over the classes",
    "iwer": "1 - word error rate",
    "icer": "1 - character error rate",
    "fense": "caption similarity with a fluency penalty",
    "date": "caption similarity and discriminability",
}


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
