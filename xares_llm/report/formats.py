"""The report's table as text: column headers and cells shared by Markdown, CSV, HTML and the terminal."""

from __future__ import annotations

import csv
import io

from xares_llm.report.bootstrap import Estimate
from xares_llm.report.seeds import seeds_markdown
from xares_llm.report.tables import Report, Row

DIGITS = 3


def number(value: float | None, digits: int = DIGITS) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def estimate_text(estimate: Estimate | None, signed: bool = False) -> str:
    """``0.812 [0.771, 0.850]``; a bare score when it has no interval; "" for a missing cell."""
    if estimate is None:
        return ""
    sign = "+" if signed else ""
    text = f"{estimate.score:{sign}.{DIGITS}f}"
    if estimate.has_interval:
        text += f" [{estimate.low:{sign}.{DIGITS}f}, {estimate.high:{sign}.{DIGITS}f}]"
    return text


def headers(report: Report) -> list[str]:
    columns = ["task", "track", "domain", "metric", *report.labels]
    if report.paired:
        columns.append(difference_header(report))
    columns += report.baseline_names
    if report.challenge:
        columns += ["challenge best", "challenge median"]
    return columns


def difference_header(report: Report) -> str:
    return f"{report.labels[1]} − {report.labels[0]}"


def text_cells(report: Report, row: Row) -> list[str]:
    """One row's cells, in `headers` order."""
    if row.kind == "cost":  # hours, not a score: more digits, no interval
        runs = ["" if c is None else f"{c.score:.4f}" for c in row.cells]
        return [row.label, "", "", "", *runs] + [""] * (len(headers(report)) - 4 - len(runs))
    cells = [row.label, row.track, row.domain, row.metric, *(estimate_text(c) for c in row.cells)]
    if report.paired:
        cells.append(estimate_text(row.difference, signed=True))
    cells += [number(row.baselines.get(n)) for n in report.baseline_names]
    if report.challenge:
        cells += [number(row.challenge[0]), number(row.challenge[1])] if row.challenge else ["", ""]
    return cells


def footnotes(report: Report) -> list[str]:
    lines = [
        f"Intervals: 95 % percentile bootstrap, {report.resamples} resamples of the test clips, seed {report.seed}; "
        "corpus metrics (mAP, iWER, iCER, DATE) recomputed on every resample."
    ]
    if report.paired:
        lines.append(f"{difference_header(report)}: paired over the same clips and resamples.")
    if report.baseline_names:
        lines.append("Baseline means are over the same tasks as the runs' means, not the published track means.")
    return lines + report.notes


def markdown(report: Report) -> str:
    columns = headers(report)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * 4 + ["---:"] * (len(columns) - 4)) + "|"]
    for row in report.rows:
        cells = text_cells(report, row)
        if row.kind != "task":
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    text = "\n".join(lines) + "\n\n" + "\n".join(f"- {line}" for line in footnotes(report)) + "\n"
    return text + ("\n" + seeds_markdown(report.seed_groups, report.labels) if report.seed_groups else "")


def csv_text(report: Report) -> str:
    """Wide CSV: per run score, ci_low, ci_high and n columns (the numbers, unformatted)."""
    columns = ["kind", "task", "track", "domain", "metric"]
    for label in report.labels:
        columns += [label, f"{label}_ci_low", f"{label}_ci_high", f"{label}_n"]
    if report.paired:
        columns += ["difference", "difference_ci_low", "difference_ci_high"]
    columns += report.baseline_names
    if report.challenge:
        columns += ["challenge_best", "challenge_median"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in report.rows:
        values: list = [row.kind, row.label, row.track, row.domain, row.metric]
        for i, cell in enumerate(row.cells):
            n = row.n_samples[i] if row.n_samples else None
            values += [*_raw(cell), "" if n is None else n]
        if report.paired:
            values += _raw(row.difference)
        values += [_float(row.baselines.get(n)) for n in report.baseline_names]
        if report.challenge:
            values += list(row.challenge) if row.challenge else ["", ""]
        writer.writerow(values)
    return buffer.getvalue()


def _raw(estimate: Estimate | None) -> list:
    if estimate is None:
        return ["", "", ""]
    return [_float(estimate.score), _float(estimate.low), _float(estimate.high)]


def _float(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"
