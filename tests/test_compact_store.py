"""Compact store dtypes: int8 (per-frame scale) and bitround<N> (float16, N mantissa bits) round trips,
their fingerprints, tampered parts refused, and training from an int8 store."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit, PartBuffer, SourceInfo, read_part_attrs, write_part
from xares_llm.cache.dtypes import quantise_int8
from xares_llm.cache.errors import CacheError
from xares_llm.cache.verify import verify_part
from xares_llm.cli.main import app
from xares_llm.encoders.describe import candidate_ids, prepare_encoder
from xares_llm.errors import StoreError
from xares_llm.extract.run import extract
from xares_llm.lalm.evaluate import evaluate
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.train import train
from xares_llm.scoring.score import score_run
from xares_llm.tasks.schema import load_mixture, load_task

SOURCE = SourceInfo("x.tar", 1, "00", 0)


def write(tmp_path, dtype: str, clips: list[np.ndarray]):
    buffer = PartBuffer(dim=clips[0].shape[1], dtype=dtype)
    for i, frames in enumerate(clips):
        buffer.add(f"c{i}", frames, "{}", 160 * len(frames))
    path = tmp_path / "features" / "enc" / "ds" / "train" / "part-x.zarr"
    attrs = write_part(path, buffer, SOURCE)
    return path, attrs, FeatureSplit(tmp_path, "enc", "ds", "train")


def random_clips(rng, dim: int = 24) -> list[np.ndarray]:
    """Clips whose frames span several orders of magnitude, as real encoder features do."""
    return [(rng.standard_normal((n, dim)) * rng.uniform(0.01, 30, (n, 1))).astype(np.float32) for n in (7, 40, 3)]


def test_int8_round_trip_within_half_a_step_per_frame(tmp_path):
    rng = np.random.default_rng(0)
    clips = random_clips(rng)
    clips[1][5] = 0.0  # a silent frame: scale 0, no division by zero
    path, attrs, store = write(tmp_path, "int8", clips)
    assert attrs.nonfinite == 0 and len(store) == 3
    for i, expected in enumerate(clips):
        got = store.frames(i)
        assert got.dtype == np.float32 and got.shape == expected.shape
        scale = np.abs(expected).max(axis=1) / 127
        assert np.all(np.abs(got - expected).max(axis=1) <= scale / 2 * (1 + 1e-5) + 1e-12)
    np.testing.assert_array_equal(store.frames(1)[5], 0.0)
    np.testing.assert_array_equal(store.frames(1, 3, 9), store.frames(1)[3:9])
    assert store.frames(0, 5, 5).dtype == np.float32
    assert verify_part(path).ok


def test_bitround_keeps_n_mantissa_bits(tmp_path):
    rng = np.random.default_rng(1)
    clips = random_clips(rng)
    for bits in (7, 3):
        root = tmp_path / str(bits)
        path, _, store = write(root, f"bitround{bits}", clips)
        assert verify_part(path).ok
        for i, frames in enumerate(clips):
            half = frames.astype(np.float16).astype(np.float32)
            got = store.frames(i)
            assert got.dtype == np.float16
            normal = np.abs(half) >= np.finfo(np.float16).tiny  # subnormals have absolute, not relative, steps
            relative = np.abs(got.astype(np.float32) - half)[normal] / np.abs(half)[normal]
            assert relative.max() <= 2.0 ** -(bits + 1)
            assert relative.max() > 0  # bits were really dropped


def test_compact_dtypes_are_smaller_on_disk(tmp_path):
    rng = np.random.default_rng(2)
    clips = [rng.standard_normal((4000, 64)).astype(np.float32)]
    sizes = {}
    for dtype in ("float16", "int8", "bitround3"):
        path, _, _ = write(tmp_path / dtype, dtype, clips)
        sizes[dtype] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert sizes["int8"] < 0.6 * sizes["float16"] and sizes["bitround3"] < 0.8 * sizes["float16"]


def test_nonfinite_frames_are_counted_and_read_back_as_nan(tmp_path):
    clip = np.ones((4, 3), np.float32)
    clip[1, 0], clip[2, 2] = np.nan, np.inf
    _, scale = quantise_int8(clip)
    assert np.isnan(scale[1]) and np.isnan(scale[2]) and np.isfinite(scale[[0, 3]]).all()
    path, attrs, store = write(tmp_path, "int8", [clip])
    assert attrs.nonfinite == 2
    got = store.frames(0)
    assert np.isnan(got[1]).all() and np.isnan(got[2]).all() and np.allclose(got[[0, 3]], 1.0)
    assert verify_part(path).problems == ["2 frames hold NaN or Inf (the encoder produced them)"]


def test_each_dtype_has_its_own_encoder_id_and_bad_dtypes_are_refused():
    ids = {dtype: prepare_encoder("mel", None, "cpu", dtype)[1] for dtype in ("float16", "int8", "bitround7")}
    assert len({info.encoder_id for info in ids.values()}) == 3
    assert ids["int8"].dtype == "int8" and ids["bitround7"].dtype == "bitround7"
    assert {info.encoder_id for info in ids.values()} <= set(candidate_ids("mel", None))
    for bad in ("bitround0", "bitround11", "int4"):
        with pytest.raises(StoreError, match=f"--dtype must be float16, float32, int8 or bitround<N>.*got '{bad}'"):
            prepare_encoder("mel", None, "cpu", bad)


def zarr_json(path):
    return json.loads(path.read_text())


def test_tampered_compact_parts_are_refused_naming_the_part(tmp_path):
    rng = np.random.default_rng(3)
    path, _, _ = write(tmp_path / "q", "int8", random_clips(rng))
    shutil.rmtree(path / "scales")
    message = f"{path}: scales: array is missing (int8 frames need their scales)"
    with pytest.raises(CacheError, match=re.escape(message)):
        read_part_attrs(path)
    assert not verify_part(path).ok
    path, _, _ = write(tmp_path / "s", "int8", random_clips(rng))
    meta_path = path / "scales" / "zarr.json"
    meta_path.write_text(json.dumps(zarr_json(meta_path) | {"shape": [3]}))
    with pytest.raises(CacheError, match=re.escape(f"{path}: scales: shape[0] is 3, attributes say 50")):
        FeatureSplit(tmp_path / "s", "enc", "ds", "train")

    path, _, _ = write(tmp_path / "b", "bitround5", random_clips(rng))
    meta_path = path / "frames" / "zarr.json"
    meta = zarr_json(meta_path)
    inner = meta["codecs"][0]["configuration"]["codecs"]
    assert inner[0] == {"name": "numcodecs.bitround", "configuration": {"keepbits": 5}}
    inner[0] = {"name": "numcodecs.quantize", "configuration": {"digits": 2, "dtype": "<f2"}}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=re.escape(f"{path}: frames: codec 'numcodecs.quantize' is not one")):
        read_part_attrs(path)
    inner[0] = {"name": "numcodecs.bitround", "configuration": {"keepbits": 23}}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=re.escape(f"{path}: frames: codec 'numcodecs.bitround' keepbits 23")):
        read_part_attrs(path)

    path, _, _ = write(tmp_path / "f", "float32", random_clips(rng))  # bitround is accepted on float16 only
    meta_path = path / "frames" / "zarr.json"
    meta = zarr_json(meta_path)
    meta["codecs"][0]["configuration"]["codecs"].insert(0, inner[0] | {"configuration": {"keepbits": 5}})
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=re.escape(f"{path}: frames: codec 'numcodecs.bitround' is not one")):
        FeatureSplit(tmp_path / "f", "enc", "ds", "train")


def test_int8_extraction_trains_and_scores(demo_store, tmp_path):
    report = extract("mel", list(load_mixture("demo").tasks.values()), tmp_path, demo_store.data_root, dtype="int8")
    store = FeatureSplit(tmp_path, report.encoder_id, "demo_pitch", "test")
    exact = FeatureSplit(demo_store.cache_root, demo_store.report.encoder_id, "demo_pitch", "test")
    assert len(store) == len(exact) > 0
    for i in range(len(store)):
        reference = exact.frames(i)
        scale = np.abs(reference).max(axis=1, keepdims=True) / 127
        assert store.frames(i).dtype == np.float32
        assert np.all(np.abs(store.frames(i) - reference) <= scale / 2 * (1 + 1e-5) + 1e-12)
    runner = CliRunner(env={"COLUMNS": "200"})
    listed = runner.invoke(app, ["cache", "ls", "--cache", str(tmp_path)])
    assert listed.exit_code == 0 and re.search(rf"{report.encoder_id}.* int8 ", listed.output)
    verified = runner.invoke(app, ["cache", "verify", report.encoder_id, "--cache", str(tmp_path)])
    assert verified.exit_code == 0, verified.output
    recipe = load_recipe("demo", {"steps": 6, "checkpoint_every": 6, "batch_size": 8})
    run_dir = tmp_path / "run"
    result = train(run_dir, recipe, load_mixture("demo"), report.encoder_id, tmp_path)
    assert np.isfinite(result.final_loss)
    evaluate(run_dir, tmp_path)
    scores = score_run(run_dir)
    assert set(scores.tasks) == set(load_mixture("demo").evaluate)
    assert load_task("demo_pitch").name in scores.tasks
