"""`xares score` on a run with caption tasks, offline, with substitute models: marked as such."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from xares_llm.cli.console import out
from xares_llm.cli.main import app
from xares_llm.metrics.dummies import write_tiny_sbert
from xares_llm.scoring.predictions import predictions_path, write_predictions

CAPTIONS = ["a dog barks in the distance", "rain falls on a tin roof", "a man speaks while cars pass by"]


def test_score_caption_tasks_offline_with_substitutes(tmp_path, monkeypatch):
    monkeypatch.setattr(out, "_width", 200)
    words = {w for c in CAPTIONS for w in c.split()}
    sbert = write_tiny_sbert(tmp_path / "sbert", words)
    run = tmp_path / "run"
    for task in ("clotho", "mecat"):
        rows = [
            {"task": task, "key": f"k{i}", "prediction": c, "references": [c, CAPTIONS[(i + 1) % 3]]}
            for i, c in enumerate(CAPTIONS)
        ]
        write_predictions(predictions_path(run, task), rows)
    rows = [{"task": "esc50", "key": "k0", "prediction": "Dog", "references": ["dog"]}]
    write_predictions(predictions_path(run, "esc50"), rows)

    result = CliRunner().invoke(app, ["score", str(run), "--echecker", "none", "--sbert", str(sbert)])
    assert result.exit_code == 0, result.output
    scores = json.loads((run / "scores.json").read_text())
    for task in ("clotho", "mecat"):
        settings = scores["tasks"][task]["settings"]
        assert settings["official"] is False
        assert str(sbert) in json.dumps(settings)
        score = scores["tasks"][task]["score"]
        assert 0.0 <= score <= 1.0
        assert settings["score_rounded"] == round(score, 4)  # the reference's rounding, beside the exact score
        assert f"{score:.4f} *" in result.output  # the table shows 4 decimals
    assert scores["tasks"]["mecat"]["settings"]["samples"] == 6  # one DATE sample per (clip, caption)
    assert scores["tasks"]["mecat"]["settings"]["clips"] == scores["tasks"]["mecat"]["n_samples"] == 3
    assert scores["tasks"]["clotho"]["metric"] == "fense" and scores["tasks"]["mecat"]["metric"] == "date"
    assert scores["tasks"]["esc50"] == {**scores["tasks"]["esc50"], "score": 1.0, "n_samples": 1}
    assert "scored with substitute models" in result.output
    assert "higher is better" in result.output and "accuracy = share of exact answers" in result.output


def test_usage_lines_name_arguments_plainly():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "Usage: xares train [OPTIONS] ENCODER" in result.output and "{" not in result.output.splitlines()[1]
    flags = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"}).output
    assert "<bool>" not in flags and "--redo" in flags
