"""`xares report`: runs and probe outputs side by side, with bootstrap intervals, figures and exports.

::

    load.py       a result directory (run or probe output) -> tasks, predictions, training log
    bootstrap.py  seeded resamples of test clips -> intervals of scores, means and paired differences
    tables.py     rows grouped by track and domain, track means over one set of tasks, reference columns
    formats.py    the cells as text; Markdown and CSV
    charts.py     PNG figures (matplotlib, imported only here)
    html.py       one self-contained HTML file with the figures inlined
    seeds.py      runs differing only in seed: mean, sd, an interval over seeds and clips
    settings.py   what each column was made with (encoder, recipe, steps, seed, dtype, date, comparable)
"""

from __future__ import annotations

from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.errors import XaresError
from xares_llm.report.tables import Report

FORMATS = ("md", "csv", "html")


def parse_formats(text: str) -> list[str]:
    chosen = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        given = ", ".join(unknown) or "nothing"
        raise XaresError(f"--format: unknown {given}; use a comma list of {', '.join(FORMATS)}")
    return chosen


def write_report(report: Report, results: list, out_dir: Path, formats: list[str]) -> list[Path]:
    """Write report.md / report.csv / report.html (seeds.csv with seed groups) and the PNG figures into
    `out_dir`; the paths written."""
    from xares_llm.report.charts import all_charts
    from xares_llm.report.formats import csv_text, markdown
    from xares_llm.report.html import html_page
    from xares_llm.report.settings import settings_csv, settings_html, settings_markdown, settings_rows

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = all_charts(report, results, out_dir / "figures")
    written = [c.path for c in charts]
    settings = settings_rows(results)
    figures = "".join(f"- [{c.title}]({c.path.relative_to(out_dir).as_posix()})\n" for c in charts)
    texts = {
        "md": lambda: f"{markdown(report)}\n{settings_markdown(settings)}\n## Figures\n\n{figures}",
        "csv": lambda: csv_text(report),
        "html": lambda: html_page(report, charts, extra=settings_html(settings)),
    }
    for fmt in formats:
        path = out_dir / f"report.{fmt}"
        atomic_write_text(path, texts[fmt]())
        written.append(path)
    if "csv" in formats:  # the settings, and the seed groups, are tables of their own
        tables = {"settings.csv": lambda: settings_csv(settings)}
        if report.seed_groups:
            from xares_llm.report.seeds import seeds_csv

            tables["seeds.csv"] = lambda: seeds_csv(report.seed_groups)
        for name, text in tables.items():
            atomic_write_text(out_dir / name, text())
            written.append(out_dir / name)
    return written
