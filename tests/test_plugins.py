"""Plugins: a pip-installed package's projector and metric, found through entry points, used from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xares_llm.registry import Registry
from xares_llm.tasks.schema import load_task

PLUGIN_MODULE = '''
import math

import torch
from torch import nn

from xares_llm.metrics import MetricResult


class ConvDownsampler(nn.Module):
    """Two 1-D convolutions; the first halves the frame rate."""

    def __init__(self, input_dim, llm_dim, config):
        super().__init__()
        hidden = config.args.get("hidden", llm_dim)
        self.net = nn.Sequential(
            nn.Conv1d(input_dim, hidden, 3, stride=2, padding=1), nn.GELU(), nn.Conv1d(hidden, llm_dim, 3, padding=1)
        )

    def output_lengths(self, frames):
        return torch.div(frames + 1, 2, rounding_mode="floor")

    def forward(self, features):
        return self.net(features.transpose(1, 2)).transpose(1, 2)


def first_letter(predictions, references):
    hits = [p[:1] == refs[0][:1] for p, refs in zip(predictions, references)]
    return MetricResult(score=sum(hits) / len(hits), settings={"rule": "first letter"})
'''

ENTRY_POINTS = """[xares_llm.projectors]
conv2 = xares_demo_plugin:ConvDownsampler

[xares_llm.metrics]
first_letter = xares_demo_plugin:first_letter
"""


def write_plugin(root: Path) -> Path:
    """An installed-looking distribution: the module plus its .dist-info with entry points."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "xares_demo_plugin.py").write_text(PLUGIN_MODULE)
    info = root / "xares_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xares-demo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def test_registry_loads_entry_points_on_first_lookup(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path / "site")))
    metrics = Registry("metric", "xares_llm.metrics")
    metrics.register("accuracy", "xares_llm.metrics.classification:accuracy")
    assert metrics.names() == ["accuracy", "first_letter"]
    assert metrics.get("first_letter").__name__ == "first_letter"
    with pytest.raises(KeyError, match=r"Did you mean 'first_letter'.*Choices: accuracy, first_letter"):
        metrics.get("first_leter")
    with pytest.raises(ValueError, match="already registered"):
        metrics.register("first_letter", "x:y")


def test_a_plugin_projector_and_metric_in_xares_run(demo_store, tmp_path):
    site = write_plugin(tmp_path / "site")
    task = load_task("demo_pitch").model_dump(mode="json")
    task |= {"name": "pitch_letter", "metric": {"name": "first_letter", "args": {}}}
    (tmp_path / "pitch_letter.yaml").write_text(yaml.safe_dump(task))
    mixture = {"name": "plug", "weights": {"pitch_letter.yaml": 1}, "evaluate": ["pitch_letter.yaml"]}
    (tmp_path / "plug.yaml").write_text(yaml.safe_dump(mixture))
    recipe = yaml.safe_load((Path(__file__).parents[1] / "configs/recipes/demo.yaml").read_text())
    recipe["projector"] = {"type": "conv2", "stack": 1, "args": {"hidden": 64}}
    (tmp_path / "conv.yaml").write_text(yaml.safe_dump(recipe))
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "xares_llm.cli.main", "run", "mel", "--mixture", str(tmp_path / "plug.yaml")]
    command += ["--recipe", str(tmp_path / "conv.yaml"), "--steps", "4", "--run-dir", str(run_dir)]
    command += ["--data", str(demo_store.data_root), "--cache", str(demo_store.cache_root)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads((run_dir / "scores.json").read_text())
    assert scores["tasks"]["pitch_letter"]["metric"] == "first_letter"
    assert scores["tasks"]["pitch_letter"]["settings"]["rule"] == "first letter"
    assert scores["provenance"]["recipe"]["projector"]["type"] == "conv2"
