"""Every listing prints whole values off a terminal, folds them on a narrow one, and takes --json."""

from __future__ import annotations

import json

from rich.console import Console
from typer.testing import CliRunner

from xares_llm.cli.console import Listing
from xares_llm.cli.main import app


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result


def test_cache_ls_whole_off_a_terminal_and_as_json(demo_store):
    encoder_id = demo_store.report.encoder_id
    table = invoke("cache", "ls", "--cache", str(demo_store.cache_root)).stdout
    assert encoder_id in table and "precision" in table and "last extract" in table and "…" not in table
    rows = json.loads(invoke("cache", "ls", "--cache", str(demo_store.cache_root), "--json").stdout)
    assert [(r["encoder-id"], r["spec"], r["dtype"]) for r in rows] == [(encoder_id, "mel", "float32")]
    assert rows[0]["clips"] > 0


def test_cache_ls_of_an_empty_cache_says_how_to_fill_it(tmp_path):
    result = invoke("cache", "ls", "--cache", str(tmp_path))
    assert "no feature stores in" in result.output and "xares extract" in result.output
    assert json.loads(invoke("cache", "ls", "--cache", str(tmp_path), "--json").stdout) == []


def test_tasks_as_json_and_whole_in_a_file():
    data = json.loads(invoke("tasks", "--json").stdout)
    names = [t["name"] for t in data["tasks"]]
    assert "demo_pitch" in names and len(names) >= 20
    assert {m["name"] for m in data["mixtures"]} >= {"task1", "task2", "demo"}
    table = invoke("tasks").stdout
    assert "…" not in table and all(name in table for name in names)


def test_bench_json_to_stdout():
    result = invoke("bench", "mel", "--durations", "1", "--batch-sizes", "1", "--repeats", "1", "--json", "-")
    data = json.loads(result.stdout)
    assert data["encoder"] == "mel" and data["points"][0]["output_dim"] > 0


def test_probe_rows_whole_in_a_file_and_as_json(demo_store, tmp_path):
    args = ["probe", demo_store.report.encoder_id, "--tasks", "demo", "--heads", "linear,knn"]
    args += ["--cache", str(demo_store.cache_root), "--out", str(tmp_path / "p")]
    table = invoke(*args).stdout
    for task in ("demo_count", "demo_events", "demo_pitch"):  # demo_melody (ASR) needs the ctc head
        assert task in table
    header = next(line for line in table.splitlines() if "test clips" in line)
    assert "…" not in table and header.rstrip(" ┃").endswith("knn")  # no baseline has a demo task: no empty columns
    data = json.loads(invoke(*args, "--json").stdout)
    assert sorted(data["tasks"]) == ["demo_count", "demo_events", "demo_pitch"]


def test_a_narrow_terminal_folds_ids_instead_of_cutting_them():
    console = Console(width=60, force_terminal=True, record=True, color_system=None)
    table = Listing(title="Runs")
    for column in ("run", "status", "steps", "encoder", "mixture", "overall"):
        table.add_column(column)
    encoder_id = "mel-" + "0123456789abcdef" * 2
    table.add_row("runs/" + encoder_id + "-demo-demo-a1b2c3", "finished", "1200/1200", encoder_id, "demo", "0.5")
    console.print(table)
    text = console.export_text()
    assert "…" not in text
    joined = "".join(line.split("│")[4].strip() for line in text.splitlines() if line.count("│") > 4)
    assert encoder_id in joined  # the id column, read down its folded lines
