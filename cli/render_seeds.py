"""The score table of a seed group: mean ± sd over the seeds, each seed's score, the cost."""

from __future__ import annotations

from xares_llm.cli.console import Listing
from xares_llm.cli.render import SCORE_DECIMALS


def spread_text(entry: dict) -> str:
    """``0.8123 ± 0.0140``; the mean alone for one seed."""
    text = f"{entry['mean']:.{SCORE_DECIMALS}f}"
    return text if entry["sd"] is None else f"{text} ± {entry['sd']:.{SCORE_DECIMALS}f}"


def hours_text(hours: float | None) -> str:
    return "" if hours is None else f"{hours:.4f}"


def seeds_table(group: dict) -> Listing:
    """One row per task, then track means and the overall mean; a column per seed."""
    seeds = [str(s) for s in group["seeds"]]
    table = Listing(title=f"Scores over {len(seeds)} seeds", title_justify="left")
    table.add_column("task")
    table.add_column("mean ± sd", justify="right", style="bold")
    for seed in seeds:
        table.add_column(f"seed {seed}" + (" (ref)" if seed == str(group["reference_seed"]) else ""), justify="right")

    def add(label: str, entry: dict) -> None:
        each = [f"{entry['seeds'][s]:.{SCORE_DECIMALS}f}" if s in entry["seeds"] else "" for s in seeds]
        table.add_row(label, spread_text(entry), *each)

    for task, entry in group["tasks"].items():
        add(task, entry)
    table.add_section()
    for track, entry in group["tracks"].items():
        add(f"mean {track}", entry)
    add("overall", group["overall"])
    notes = ["sd: sample standard deviation over the seeds (n - 1)"]
    if group["reference_run"]:
        comparable = "comparable" if group["comparable_to_reference"] else "not comparable"
        notes.append(
            f"reference seed {group['reference_seed']}: {group['reference_run']} ({comparable} with the reference)"
        )
    cost = group.get("cost") or {}
    if cost.get("device_hours") is not None:
        hours = hours_text(cost["device_hours"])
        notes.append(f"cost: {hours} device-hours (one extraction share, every seed's training and evaluation)")
    table.caption = "\n".join(notes)
    table.caption_justify = "left"
    return table
