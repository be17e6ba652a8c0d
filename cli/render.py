"""Rich renderings shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from xares_llm.cli.console import Listing, out
from xares_llm.scoring.baselines import baseline_mean

if TYPE_CHECKING:
    from xares_llm.extract.plan import ExtractPlan
    from xares_llm.scoring.score import Scores

SCORE_DECIMALS = 4  # mecat rounds FENSE and DATE to 4 decimals; the published baselines have 3


def scores_table(scores: Scores, baselines: dict[str, dict[str, float]] | None = None) -> Listing:
    """One row per task, then each track's mean and the overall mean; optional baseline columns."""
    table = Listing(title="Scores", title_justify="left")
    for column in ("task", "track", "metric", "samples"):
        table.add_column(column)
    table.add_column("score", justify="right", style="bold")
    names = [n for n, b in (baselines or {}).items() if any(b.get(t) is not None for t in scores.tasks)]
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
    from xares_llm.scoring.score import left_out_text

    left_out = [f"{s.task} {left_out_text(s.n_left_out)}" for s in scores.tasks.values() if s.n_left_out]
    if left_out:
        notes.append(f"test samples in no denominator (as the reference): {'; '.join(left_out)}")
    table.caption = "\n".join(notes) or None
    table.caption_justify = "left"
    return table


def print_scores(scores: Scores, run_dir: Path, baselines: dict[str, dict[str, float]] | None = None) -> None:
    """The score table, then whether it compares with the reference system, in one line."""
    table = scores_table(scores, baselines)
    notes, table.caption = table.caption, None  # whole lines below the table, not wrapped to its width
    out.print(table)
    for line in [*(notes or "").splitlines(), comparability_line(scores, run_dir)]:
        out.print(line, highlight=False, soft_wrap=True)


def comparability_line(scores: Scores, run_dir: Path) -> str:
    """One line: comparable, or the first reason and where the whole list is."""
    if not scores.differences:
        return "comparable with the reference system (scores.json: comparable_to_reference true)"
    more = len(scores.differences) - 1
    where = f"{Path(run_dir) / 'scores.json'} 'differences'"
    tail = f"; {more} more reasons in {where}" if more else f" ({where})"
    return f"not comparable with the reference system: {escape(scores.differences[0])}{tail}"


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


def plan_table(plan: ExtractPlan) -> Listing:
    """`xares extract --plan`: one row per task split, then the total against the free disk."""
    from xares_llm.extract.plan import human_bytes

    table = Listing(title=f"Extraction plan: {plan.encoder_id} ({plan.dtype}, {plan.device})", title_justify="left")
    for column in ("task", "split", "shards", "clips", "audio h", "hours from", "store", "time"):
        table.add_column(column, justify="left" if column in ("task", "split", "hours from") else "right")
    for row in plan.rows:
        shards = f"{row.shards}" + (f" ({row.missing} not here)" if row.missing else "")
        shards += f" ({row.up_to_date} done)" if row.up_to_date else ""
        table.add_row(
            row.task, row.split, shards, str(row.clips), f"{row.audio_hours:.3f}", row.method,
            human_bytes(plan.store_bytes(row)), _duration(plan.seconds(row)),
        )  # fmt: skip
    table.add_section()
    table.add_row(
        "total", "", str(sum(r.shards for r in plan.rows)), str(sum(r.clips for r in plan.rows)),
        f"{sum(r.audio_hours for r in plan.rows):.3f}", "", human_bytes(plan.total_bytes),
        _duration(plan.total_seconds), style="bold",
    )  # fmt: skip
    return table


def plan_notes(plan: ExtractPlan) -> list[str]:
    """What the plan's numbers rest on, and whether the store fits."""
    from xares_llm.extract.plan import human_bytes

    probe, fits = plan.probe, "fits"
    missing = sum(r.missing for r in plan.rows)
    if missing and not any(r.clips for r in plan.rows):
        names = ",".join(dict.fromkeys(r.task for r in plan.rows if r.missing))
        fits = f"nothing to estimate yet: `xares download --tasks {names}` first, or point --data at a mirror"
    notes = [
        f"store: {probe.bytes_per_frame:.1f} bytes per frame ({plan.output_dim} dims, {plan.dtype}, measured on "
        f"{probe.audio_seconds:.0f} s of sampled audio) x {plan.frame_rate_hz:g} frames/s; "
        f"time: {probe.speed:.0f}x real time on {plan.device} (a timed probe batch)",
        f"free at {plan.cache_root}: {human_bytes(plan.free_bytes)}; "
        + (fits if plan.total_bytes <= plan.free_bytes else "[red]does not fit[/red]: extract refuses without --force"),
    ]
    if missing:
        notes.append(f"{missing} shards are not downloaded yet: their clips are not counted")
    if plan.generated:
        notes.append(
            f"{plan.generated} demo shards are not written yet: `xares extract` generates them under --data "
            "(this plan used scratch copies and wrote nothing)"
        )
    notes += [f"[yellow]{p}[/yellow]" for r in plan.rows for p in r.problems]
    return notes


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
