"""What each report column was made with: one row per run or probe output, in every report format.

A comparison is only as good as the settings behind it, so the report lists, per column, the encoder
(id and spec), recipe, steps, seed, store dtype, precisions, date and whether its scores compare with
the reference system (the first reason when not). Read from the files `xares score` and `xares probe`
write (scores.json provenance, probe_scores.json), never recomputed.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from xares_llm.report.load import PROBE_SCORES, ResultDir
from xares_llm.scoring.score import SCORES_JSON

COLUMNS = (
    "column", "kind", "encoder-id", "encoder spec", "recipe", "steps", "seed", "store dtype",
    "encoder precision", "training precision", "date", "comparable to the reference",
)  # fmt: skip


def settings_rows(results: list[ResultDir]) -> list[dict[str, str]]:
    return [_probe_row(r) if (r.path / PROBE_SCORES).is_file() else _run_row(r) for r in results]


def _run_row(result: ResultDir) -> dict[str, str]:
    provenance = result.provenance
    recipe, training = provenance.get("recipe") or {}, provenance.get("training") or {}
    extraction = provenance.get("extraction") or {}
    steps = training.get("steps_done"), training.get("steps")
    differences = result.differences
    comparable = "yes" if result.comparable else f"no: {differences[0]}" if differences else "no"
    values = (
        result.label, "run", provenance.get("encoder_id", result.encoder_id), provenance.get("encoder_spec"),
        recipe.get("name"), f"{steps[0]}/{steps[1]}" if None not in steps else None, provenance.get("seed"),
        extraction.get("store_dtype"), extraction.get("precision"), training.get("precision"),
        _date(result.path / SCORES_JSON), comparable,
    )  # fmt: skip
    return _row(values)


def _probe_row(result: ResultDir) -> dict[str, str]:
    data = _read(result.path / PROBE_SCORES)
    values = (
        result.label, "probe", data.get("encoder_id"), data.get("encoder_spec"),
        f"probe heads {','.join(data.get('heads') or [])} ({data.get('pooling')} pooling)", None, data.get("seed"),
        None, None, None, _date(result.path / PROBE_SCORES), "no: probe scores are not LALM scores",
    )  # fmt: skip
    return _row(values)


def _row(values: tuple) -> dict[str, str]:
    return {c: "" if v is None else str(v) for c, v in zip(COLUMNS, values, strict=True)}


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _date(path: Path) -> str:
    """When the scores were written (the file's time, UTC, to the minute)."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")


def settings_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] * len(COLUMNS)) + "|"]
    lines += ["| " + " | ".join(row[c].replace("|", "\\|") for c in COLUMNS) + " |" for row in rows]
    return "## Settings\n\n" + "\n".join(lines) + "\n"


def settings_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def settings_html(rows: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{escape(row[c])}</td>" for c in COLUMNS) + "</tr>" for row in rows)
    return f'<h2>Settings</h2><table class="settings"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
