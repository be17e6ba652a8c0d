"""The benchmarks' timing rules: interleaved modes, 5+ repeats, robust summaries, cold reads, impossible ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.common import drop_page_cache, interleaved, ratio, summary
from benchmarks.run_all import summarise
from benchmarks.storage import DTYPES


def test_interleaved_rotates_the_order_and_excludes_warmup():
    calls = []
    stats = interleaved({m: (lambda m=m: calls.append(m)) for m in "abc"}, repeats=5, warmup=1)
    assert calls[:3] == ["a", "b", "c"] and calls[3:6] == ["b", "c", "a"] and calls[6:9] == ["c", "a", "b"]
    assert len(calls) == 18 and all(s["wall_s"]["n"] == 5 and len(s["walls"]) == 5 for s in stats.values())
    with pytest.raises(ValueError, match="at least 5"):
        interleaved({"a": lambda: None}, repeats=3)


def test_summary_is_median_and_iqr():
    assert summary([1.0, 2.0, 3.0, 4.0, 100.0]) == {"median": 3.0, "iqr": 2.0, "n": 5}


def test_a_ratio_below_its_physical_minimum_is_a_measurement_error():
    fast, slow = {"median": 1.0, "iqr": 0.1}, {"median": 2.0, "iqr": 0.2}
    assert ratio(slow, fast, minimum=1.0) == {"value": 2.0, "approx_iqr": 0.2}
    flagged = ratio(fast, slow, minimum=1.0)
    assert flagged["value"] == 0.5 and "below its physical minimum" in flagged["measurement_error"]


def test_drop_page_cache_visits_every_file(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("x", "a/y", "a/b/z"):
        (tmp_path / name).write_bytes(b"0" * 4096)
    assert drop_page_cache(tmp_path) == 3


def test_storage_results_render_one_row_per_dtype():
    result = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / "storage.json").read_text())
    lines = summarise({"storage": result})
    rows = [line for line in lines if line.startswith("| ") and line.split(" | ")[0][2:] in DTYPES]
    assert [row.split(" | ")[0][2:] for row in rows] == list(DTYPES)
    assert any(line.startswith("Goal: a dtype at <= 0.3x") for line in lines)
