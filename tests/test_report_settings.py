"""Reports say what was compared: a settings table per column, linked figures, probe outputs as the
README names them, and no empty reference columns."""

from __future__ import annotations

import csv

import pytest
from typer.testing import CliRunner

from tests.test_report import make_run
from xares_llm.cli.main import app
from xares_llm.report.charts import natural_order


@pytest.fixture(scope="module")
def probe_out(demo_store, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("probes") / f"{demo_store.report.encoder_id}-demo"
    args = ["probe", demo_store.report.encoder_id, "--tasks", "demo", "--heads", "linear,knn"]
    result = CliRunner().invoke(app, [*args, "--cache", str(demo_store.cache_root), "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    return out_dir


def test_a_run_and_a_probe_output_side_by_side_with_their_settings(probe_out, demo_store, tmp_path):
    run = make_run(tmp_path / "weak", 0.5, 1)
    out_dir = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(run), str(probe_out), "--out", str(out_dir)])
    assert result.exit_code == 0, result.output
    encoder_id = demo_store.report.encoder_id
    assert f"probe {encoder_id}" in result.output  # the column is titled with its encoder, not "mlp"

    md = (out_dir / "report.md").read_text()
    assert "## Settings" in md and f"| probe {encoder_id} | probe | {encoder_id} | mel |" in md
    assert "| weak | run |" in md
    links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("- [")]
    assert links and all((out_dir / link).is_file() for link in links)
    assert "figures/confusion_1_demo_pitch.png" in links  # the probe's primary head has predictions

    rows = list(csv.DictReader((out_dir / "settings.csv").open()))
    assert [(r["column"], r["kind"]) for r in rows] == [("weak", "run"), (f"probe {encoder_id}", "probe")]
    assert rows[1]["comparable to the reference"].startswith("no: probe scores")
    html = (out_dir / "report.html").read_text()
    assert "<h2>Settings</h2>" in html and encoder_id in html


def test_baseline_columns_with_nothing_for_these_tasks_are_dropped(probe_out):
    result = CliRunner().invoke(app, ["report", str(probe_out), "--baselines"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "metric" in line)
    assert "Dasheng" not in header and "Whisper" not in header and "challenge" not in header


def test_confusion_classes_read_in_order():
    assert sorted(["class 10", "class 2", "b", "a"], key=natural_order) == ["a", "b", "class 2", "class 10"]


def test_the_score_table_drops_baseline_columns_without_these_tasks(tmp_path):
    from xares_llm.cli.console import out
    from xares_llm.cli.render import scores_table
    from xares_llm.scoring.baselines import BASELINES
    from xares_llm.scoring.score import score_run

    scores = score_run(make_run(tmp_path / "run", 0.5, 1))
    with out.capture() as captured:
        out.print(scores_table(scores, BASELINES))
    assert "Dasheng" in captured.get()  # esc50 has published scores
    scores.tasks = {name: s for name, s in scores.tasks.items() if name.startswith("demo_")}
    with out.capture() as captured:
        out.print(scores_table(scores, BASELINES))
    assert "Dasheng" not in captured.get() and "Whisper" not in captured.get()
