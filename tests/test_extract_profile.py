"""Each extraction run records what it cost in the store (extract-profile.json); `cache ls` shows it
and push/pull carry it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import zarr
from typer.testing import CliRunner

from xares_llm.cache.profile import PROFILE_FILE, read_profiles
from xares_llm.cache.transfer import pull, push
from xares_llm.cli.console import out
from xares_llm.cli.main import app
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import resolve_tasks


def stored_audio_seconds(store) -> float:
    return sum(int(np.sum(zarr.open_group(p, mode="r")["n_samples"][:])) for p in store.rglob("part-*.zarr")) / 16_000


def test_the_demo_extraction_profile_is_consistent(demo_store):
    store = demo_store.cache_root / "features" / demo_store.report.encoder_id
    [run] = read_profiles(store)
    assert run["device"] == "cpu" and run["precision"] == "fp32" and run["dtype"] == "float32"
    assert run["clips"] == demo_store.report.clips and run["parts"] == len(demo_store.report.written) == 16
    assert run["audio_hours"] == round(stored_audio_seconds(store) / 3600, 6) > 0
    assert run["wall_s"] > 0 and run["x_realtime"] > 1 and run["peak_memory_mb"] > 100
    assert abs(run["x_realtime"] - run["audio_hours"] * 3600 / run["wall_s"]) <= 0.01 * run["x_realtime"]
    seconds = run["seconds"]
    assert all(seconds[stage] > 0 for stage in ("decode", "encode", "write")) and seconds["decode_wait"] >= 0
    # one decode thread, the encoder loop and one writer thread run at once, each at most the wall time
    assert seconds["encode"] + seconds["decode_wait"] <= run["wall_s"] * 1.01
    assert seconds["decode"] <= run["wall_s"] * 1.01 and seconds["write"] <= run["wall_s"] * 1.01


def test_runs_are_appended_a_no_op_adds_none_and_ls_shows_the_latest(demo_store, tmp_path, monkeypatch):
    monkeypatch.setattr(out, "_width", 300)  # one line per row, as in a wide terminal
    root = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, root)
    store = root / "features" / demo_store.report.encoder_id
    tasks = resolve_tasks("demo")
    extract("mel", tasks, root, demo_store.data_root, dtype="float32")  # everything up to date
    assert len(read_profiles(store)) == 1
    shutil.rmtree(next(store.rglob("part-*.zarr")))
    report = extract("mel", tasks, root, demo_store.data_root, dtype="float32")
    runs = read_profiles(store)
    assert len(runs) == 2 and runs[-1]["parts"] == 1 and runs[-1]["clips"] == report.clips
    result = CliRunner().invoke(app, ["cache", "ls", "--cache", str(root)])
    assert result.exit_code == 0, result.output
    latest = f"{runs[-1]['x_realtime']:g}x real time, {runs[-1]['peak_memory_mb']:.0f} MB peak, cpu"
    assert latest in result.output


def test_push_and_pull_carry_the_profile(demo_store, tmp_path):
    root, encoder_id = demo_store.cache_root, demo_store.report.encoder_id
    push(root, encoder_id, str(tmp_path / "remote"))
    pulled = pull(tmp_path / "other", encoder_id, str(tmp_path / "remote"))
    assert (pulled.path / PROFILE_FILE).read_bytes() == (root / "features" / encoder_id / PROFILE_FILE).read_bytes()


def test_an_unreadable_profile_is_replaced_and_never_stops_ls(demo_store, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, root)
    store = root / "features" / demo_store.report.encoder_id
    (store / PROFILE_FILE).write_text("{not json")
    result = CliRunner().invoke(app, ["cache", "ls", "--cache", str(root)])
    assert result.exit_code == 0 and "real time" not in result.output, result.output
    shutil.rmtree(next(store.rglob("part-*.zarr")))
    extract("mel", resolve_tasks("demo"), root, demo_store.data_root, dtype="float32")
    runs = json.loads((store / PROFILE_FILE).read_text())
    assert isinstance(runs, list) and len(runs) == 1 and runs[0]["parts"] == 1
