"""`xares bench`: an encoder's speed and memory through the extraction path, as a table and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xares_llm.cli.console import out
from xares_llm.cli.main import app
from xares_llm.encoders import load_encoder
from xares_llm.extract.profile import extraction_profile
from xares_llm.memory import PeakMemory


def test_bench_mel_prints_the_table_and_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(out, "_width", 200)
    path = tmp_path / "bench" / "mel.json"
    args = ["bench", "mel", "--durations", "1,10", "--batch-sizes", "1,4", "--repeats", "2", "--json", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "x real time" in result.output and "peak RSS MB" in result.output
    data = json.loads(path.read_text())
    assert data["device"] == "cpu" and data["precision"] == "fp32" and data["warmup"] == 1
    points = data["points"]
    assert [(p["duration_s"], p["batch_size"]) for p in points] == [(1, 1), (1, 4), (10, 1), (10, 4)]
    mel = load_encoder("mel").module
    for p in points:
        assert p["clips_per_s"] > 0 and p["repeats"] == 2 and p["peak_memory_mb"] > 50
        assert p["x_realtime"] == pytest.approx(p["clips_per_s"] * p["duration_s"], rel=1e-2)
        assert p["output_dim"] == mel.output_dim
        assert p["frame_rate_hz"] == pytest.approx(mel.frame_rate_hz, rel=0.05)
    assert points[2]["frames_per_clip"] == pytest.approx(10 * mel.frame_rate_hz, rel=0.05)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--durations", "1,x"], "--durations"),
        (["--batch-sizes", "0"], "--batch-sizes"),
        (["--precision", "int8"], "--precision must be one of"),
    ],
)
def test_bench_refuses_bad_options_in_one_line(args, message):
    result = CliRunner().invoke(app, ["bench", "mel", "--durations", "1", "--batch-sizes", "1", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_peak_memory_sees_an_allocation_inside_the_block():
    with PeakMemory(torch.device("cpu")) as before:
        pass
    with PeakMemory(torch.device("cpu")) as during:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
        del block
    assert during.peak_mb > before.peak_mb + 150


def test_extraction_profile_in_bench_units():
    profile = extraction_profile(
        wall_s=10.0,
        audio_seconds=7200.0,
        clips=720,
        device="cpu",
        precision="fp32",
        decode_s=3,
        encode_s=8,
        write_s=1,
        decode_wait_s=0.5,
    )
    assert profile["audio_hours"] == 2.0 and profile["audio_hours_per_s"] == 0.2 and profile["x_realtime"] == 720.0
    assert profile["clips_per_s"] == 72.0 and profile["seconds"] == {
        "decode": 3,
        "decode_wait": 0.5,
        "encode": 8,
        "write": 1,
    }
    assert profile["peak_memory_mb"] is None
