"""Random and mutated versions of every file read from a share, a URL or a run dir: each is used, or refused
with the one error type the CLI renders as one line, or dropped as documented; nothing else escapes.

Formats: encoder.json, a part's zarr.json files (group attributes and arrays), run.json, log.jsonl, a
checkpoint's weights and training state, the probe's pooled-embedding cache. Sample json, tar members
and YAML have their own fuzz tests (test_sample_json.py, test_shard_fuzz.py, test_yaml_inputs.py).
Each loop is seeded and small: a few seconds on two cores.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from xares_llm.cache import FeatureSplit
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import ENCODER_FILE, encoder_dir, features_root
from xares_llm.cache.metadata import read_encoder_file
from xares_llm.cache.verify import verify_part
from xares_llm.errors import XaresError
from xares_llm.lalm.checkpoints import load_state, load_trainable
from xares_llm.lalm.evaluate import last_loss
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.runs import RUN_FILE, STATE_FILE, WEIGHTS_FILE, checkpoints, read_log, read_run
from xares_llm.lalm.train import train
from xares_llm.probe.embeddings import read_cache
from xares_llm.tasks.schema import load_mixture

ODD_VALUES = [10**12, -1, 0, 2**70, 1.5, True, None, "x" * 50, [], {}, [1, 2], {"a": 1}, "NaN", 1e308]


def one_line(error: Exception) -> None:
    assert "\n" not in str(error) and len(str(error)) < 2000, str(error)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node in a JSON value."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def mutate_json(rng: random.Random, value: object) -> object:
    """A copy of `value` with one node replaced by an odd value, or one key removed."""
    value = copy.deepcopy(value)
    path = rng.choice([p for p in paths(value) if p])
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rng.choice(ODD_VALUES)
    return value


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        at = rng.randrange(len(data))
        if rng.random() < 0.6:
            data[at] = rng.randrange(256)
        elif rng.random() < 0.5:
            del data[at : at + rng.randrange(1, 64)]
        else:
            data[at:at] = rng.randbytes(rng.randrange(1, 64))
    return bytes(data)


def mutated(rng: random.Random, text: bytes) -> bytes:
    """Half the time a structural JSON mutation, else a byte-level one."""
    if rng.random() < 0.5:
        try:
            return json.dumps(mutate_json(rng, json.loads(text))).encode()
        except (ValueError, IndexError):
            pass
    return mutate_bytes(rng, text)


def fuzz_file(path: Path, original: bytes, load, refused: type[Exception], rounds: int, mutate=mutated) -> None:
    """Write `rounds` mutations of `original` to `path`; `load` each: it reads, or raises `refused` in one line."""
    rng = random.Random(path.name)
    for _ in range(rounds):
        path.write_bytes(mutate(rng, original))
        try:
            load(path)
        except refused as e:
            one_line(e)


def test_fuzz_encoder_json(demo_store, tmp_path):
    source = encoder_dir(demo_store.cache_root, demo_store.report.encoder_id) / ENCODER_FILE
    fuzz_file(tmp_path / ENCODER_FILE, source.read_bytes(), read_encoder_file, CacheError, 300)


@pytest.fixture
def one_part(demo_store, tmp_path) -> tuple[Path, Path]:
    """A cache holding one part of the demo store, and that part."""
    source = sorted(encoder_dir(demo_store.cache_root, demo_store.report.encoder_id).glob("demo_pitch/test/*.zarr"))[0]
    root = tmp_path / "cache"
    part = features_root(root) / "enc" / "ds" / "test" / source.name
    shutil.copytree(source, part)
    return root, part


def test_fuzz_part_metadata(one_part):
    root, part = one_part
    files = sorted(part.rglob("zarr.json"))
    originals = {f: f.read_bytes() for f in files}
    rng = random.Random(2)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(150):
        target = rng.choice(files)
        target.write_bytes(mutated(rng, originals[target]))
        try:
            store = FeatureSplit(root, "enc", "ds", "test")
            for index in range(len(store)):
                store[index]
            outcomes["read"] += 1
        except CacheError as e:
            one_line(e)
            outcomes["refused"] += 1
        report = verify_part(part)
        for problem in report.problems:
            assert "\n" not in problem
        target.write_bytes(originals[target])
    assert outcomes["refused"] > 50 and outcomes["read"] > 0, outcomes  # the loop reached both ends


@pytest.fixture(scope="module")
def trained_run(demo_store, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("fuzz") / "run"
    recipe = load_recipe("demo", {"steps": 1, "checkpoint_every": 1, "batch_size": 2})
    train(run_dir, recipe, load_mixture("demo"), demo_store.report.encoder_id, demo_store.cache_root)
    return run_dir


def test_fuzz_run_json_and_log(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    original = (trained_run / RUN_FILE).read_bytes()
    log = (trained_run / "log.jsonl").read_bytes()
    rng = random.Random(3)
    for _ in range(300):
        (run_dir / RUN_FILE).write_bytes(mutated(rng, original))
        try:
            info = read_run(run_dir)
            assert info.steps > 0 and isinstance(info.train_tasks, dict)
        except XaresError as e:
            one_line(e)
        lines = [mutated(rng, line) if rng.random() < 0.5 else line for line in log.splitlines()]
        lines.append(rng.choice([b"[1]", b"9" * 5000, b"[" * 10000, b'{"step": "x"}', b'{"step": 3}']))
        (run_dir / "log.jsonl").write_bytes(b"\n".join(lines))
        for entry in read_log(run_dir / "log.jsonl"):
            assert isinstance(entry["step"], int) and isinstance(entry["loss"], int | float)
        last_loss(run_dir)


def test_fuzz_checkpoint_files(trained_run, tmp_path):
    from xares_llm.lalm.checkpoints import build_model
    from xares_llm.lalm.runs import read_recipe
    from xares_llm.lalm.tokenizer import load_tokenizer

    info, recipe = read_run(trained_run), read_recipe(trained_run)
    model = build_model(recipe, info.input_dim, load_tokenizer(str(trained_run / "tokenizer")))
    _, saved = checkpoints(trained_run)[-1]
    for name, load in ((WEIGHTS_FILE, lambda p: load_trainable(model, p)), (STATE_FILE, load_state)):
        fuzz_file(tmp_path / name, (saved / name).read_bytes(), load, XaresError, 40, mutate_bytes)


def test_fuzz_probe_cache(tmp_path):
    stats = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    array_path, info_path = tmp_path / "s.npy", tmp_path / "s.json"
    np.save(array_path, stats, allow_pickle=False)
    array, info = array_path.read_bytes(), json.dumps({"empty": 0, "nonfinite_frames": 0, "n_clips": 6}).encode()
    assert read_cache(array_path, info_path.with_suffix(".none"), 6) is None
    info_path.write_bytes(info)
    assert read_cache(array_path, info_path, 6).stats.tolist() == stats.tolist()
    rng = random.Random(5)
    for _ in range(300):
        array_path.write_bytes(mutate_bytes(rng, array) if rng.random() < 0.7 else array)
        info_path.write_bytes(mutated(rng, info) if rng.random() < 0.7 else info)
        pooled = read_cache(array_path, info_path, 6)
        if pooled is not None:
            assert pooled.stats.shape == (6, 8) and pooled.stats.dtype == np.float32
    header = array[: array.index(b"\n") + 1].replace(b"(6, 8)", b"(6000000000000, 8)")  # a claim, no data
    array_path.write_bytes(header.ljust(len(header)) + array[len(header) :])
    assert read_cache(array_path, info_path.with_name("ok.json"), 6) is None
