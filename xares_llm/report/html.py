"""One self-contained HTML file: the table, its notes and every chart inlined as a base64 PNG (no CDN, no script)."""

from __future__ import annotations

import base64
from html import escape

from xares_llm.report.charts import Chart
from xares_llm.report.formats import footnotes, headers, text_cells
from xares_llm.report.tables import Report

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.7em; text-align: right; white-space: nowrap; }
th:nth-child(-n+4), td:nth-child(-n+4), table.settings td { text-align: left; }
table.settings td { white-space: normal; }
tr.mean td, tr.overall td { font-weight: bold; background: #f4f4f4; }
figure { display: inline-block; margin: 1em; vertical-align: top; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def html_page(report: Report, charts: list[Chart], title: str = "xares report", extra: str = "") -> str:
    """`extra`: HTML placed after the notes (the settings table)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers(report))
    body = [
        f'<tr class="{row.kind}">' + "".join(f"<td>{escape(c)}</td>" for c in text_cells(report, row)) + "</tr>"
        for row in report.rows
    ]
    notes = "".join(f"<li>{escape(line)}</li>" for line in footnotes(report))
    figures = "".join(
        f'<figure><img alt="{escape(c.title)}" src="data:image/png;base64,{_b64(c)}">'
        f"<figcaption>{escape(c.title)}</figcaption></figure>"
        for c in charts
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<ul>{notes}</ul>{extra}<h2>Figures</h2>{figures}</body></html>\n"
    )


def _b64(chart: Chart) -> str:
    return base64.b64encode(chart.path.read_bytes()).decode("ascii")
