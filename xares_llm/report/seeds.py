"""Seed groups in a report: runs that differ only in their seed, summarised per task and per mean.

Two runs are in one group when their recorded settings (scores.json ``provenance``) are equal once
the seed and the software versions are left out. For each task row and mean row of the report the
group shows the mean over seeds, the sample standard deviation (n - 1), each seed's own score and
a 95 % interval that combines both sources of spread: every seed's R bootstrap replicates (its test
clips resampled, `xares_llm.report.bootstrap`) are pooled into S x R values and their percentiles
taken. That interval is the spread of one run's score when both the training seed and the test
clips are drawn again; see docs/seeds.md.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xares_llm.report.bootstrap import percentile_interval
from xares_llm.report.load import ResultDir
from xares_llm.scoring.score import SCORES_JSON
from xares_llm.scoring.seed_groups import REFERENCE_SEED, mean_sd, read_group_summary

IGNORED = ("seed", "software")  # provenance keys that may differ within a group


@dataclass
class SeedRow:
    kind: str  # "task", "mean", "overall" or "cost"
    label: str
    mean: float
    sd: float | None
    scores: list[float]  # one per seed, in the group's order
    low: float | None = None
    high: float | None = None


@dataclass
class SeedGroup:
    label: str
    members: list[int]  # report column of each seed's run
    seeds: list[int]
    reference: str | None  # the reference seed's column label, when the group has it
    rows: list[SeedRow] = field(default_factory=list)


def expand_group_dirs(paths: list[Path]) -> list[Path]:
    """A seed group's folder (seeds.json, no scores.json) stands for its seeds' run dirs."""
    expanded = []
    for path in paths:
        summary = read_group_summary(path) if not (Path(path) / SCORES_JSON).is_file() else None
        if summary is None:
            expanded.append(path)
        else:
            expanded += [Path(path) / name for name in summary["runs"].values()]
    return expanded


def settings_key(result: ResultDir) -> str | None:
    """The recorded settings without the seed; None for a result that cannot be grouped."""
    if result.kind != "run" or "seed" not in result.provenance:
        return None
    settings = copy.deepcopy({k: v for k, v in result.provenance.items() if k not in IGNORED})
    (settings.get("recipe") or {}).pop("seed", None)
    return json.dumps(settings, sort_keys=True)


def seed_groups(rows: list, results: list[ResultDir]) -> list[SeedGroup]:
    """Groups of two or more runs differing only in seed, each with its rows (the report's task and mean
    rows, `xares_llm.report.tables.Row`, one cell per result); seed 42 first."""
    by_key: dict[str, list[int]] = {}
    for i, result in enumerate(results):
        if (key := settings_key(result)) is not None:
            by_key.setdefault(key, []).append(i)
    groups = []
    for members in by_key.values():
        seeds = [int(results[i].provenance["seed"]) for i in members]
        if len(members) < 2 or len(set(seeds)) < len(seeds):
            continue  # one run, or two runs of one seed: not a spread over seeds
        order = sorted(range(len(members)), key=lambda k: (seeds[k] != REFERENCE_SEED, seeds[k]))
        members, seeds = [members[k] for k in order], [seeds[k] for k in order]
        reference = results[members[0]].label if seeds[0] == REFERENCE_SEED else None
        label = f"{results[members[0]].encoder_id or results[members[0]].label} ({len(seeds)} seeds)"
        group = SeedGroup(label, members, seeds, reference)
        group.rows = [r for row in rows if (r := _seed_row(row, members)) is not None]
        group.rows.append(_cost_row([results[i].cost for i in members]))
        groups.append(group)
    return groups


def _seed_row(row, members: list[int]) -> SeedRow | None:
    cells = [row.cells[i] for i in members] if row.cells else []
    if not cells or any(c is None for c in cells):
        return None
    scores = [c.score for c in cells]
    mean, sd = mean_sd(scores)
    seed_row = SeedRow(row.kind, row.label, mean, sd, scores)
    reps = [c.replicates for c in cells]
    if all(r is not None for r in reps):
        seed_row.low, seed_row.high = percentile_interval(np.concatenate(reps))
    return seed_row


def _cost_row(costs: list[dict]) -> SeedRow:
    """Device-hours: each seed's training and evaluation, the shared extraction share counted once in the sum."""
    own = [sum((c.get(s) or {}).get("device_hours", 0.0) for s in ("training", "evaluation")) for c in costs]
    extraction = next(((c.get("extraction") or {}).get("device_hours", 0.0) for c in costs if c.get("extraction")), 0.0)
    sd = mean_sd(own)[1]
    return SeedRow("cost", "device-hours (total; per seed: training + evaluation)", extraction + sum(own), sd, own)


def seed_text(row: SeedRow, digits: int = 3) -> str:
    """``0.812 ± 0.014 [0.771, 0.850]``; the cost row is a plain sum of hours."""
    if row.kind == "cost":
        return f"{row.mean:.4f}"
    text = f"{row.mean:.{digits}f}" + ("" if row.sd is None else f" ± {row.sd:.{digits}f}")
    return text + (f" [{row.low:.{digits}f}, {row.high:.{digits}f}]" if row.low is not None else "")


def seeds_markdown(groups: list[SeedGroup], labels: list[str]) -> str:
    """One table per group: mean ± sd [pooled interval], then each seed's own score."""
    blocks = []
    for group in groups:
        columns = ["task", "mean ± sd [95 % seeds × clips]", *(f"seed {s}" for s in group.seeds)]
        lines = [f"### {group.label}", "", "| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
        for row in group.rows:
            digits = 4 if row.kind == "cost" else 3
            lines.append(
                f"| {row.label} | {seed_text(row)} | " + " | ".join(f"{s:.{digits}f}" for s in row.scores) + " |"
            )
        runs = ", ".join(f"seed {s}: {labels[i]}" for s, i in zip(group.seeds, group.members, strict=True))
        lines += [
            "",
            f"- runs: {runs}",
            f"- reference seed run: {group.reference or 'none (seed 42 not in the group)'}",
        ]
        blocks.append("\n".join(lines))
    return (
        "## Seed groups\n\n"
        + "\n\n".join(blocks)
        + "\n\n- sd: sample standard deviation over seeds (n - 1). "
        + ("Interval: each seed's bootstrap replicates of its test clips pooled, 2.5th and 97.5th percentiles.\n")
    )


def seeds_csv(groups: list[SeedGroup]) -> str:
    """Long CSV: one line per group and row, with each seed's score in a `seed N` column."""
    seeds = sorted({s for g in groups for s in g.seeds}, key=lambda s: (s != REFERENCE_SEED, s))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["group", "task", "kind", "mean", "sd", "low", "high", *(f"seed {s}" for s in seeds)])
    for group in groups:
        for row in group.rows:
            by_seed = dict(zip(group.seeds, row.scores, strict=True))
            values = [row.mean, row.sd, row.low, row.high, *(by_seed.get(s) for s in seeds)]
            writer.writerow([group.label, row.label, row.kind, *("" if v is None else f"{v:.6f}" for v in values)])
    return buffer.getvalue()
