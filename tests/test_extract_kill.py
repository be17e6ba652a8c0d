"""`xares extract` killed with SIGKILL: nothing outlives it, and reruns end with the very same store.

Commands run as forks of a zygote (tests/zygote.py): real processes with their threads and decode
workers, killed by signal at seeded moments, started in milliseconds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import SMALL_DEMO
from zygote import Zygote, kill_all, marked_processes, wait_until

from xares_llm.audio.demo_data import write_demo_shards
from xares_llm.cache.verify import verify_store

N_PARTS = 16  # 4 demo tasks x 2 splits x 2 shards
VOLATILE = {"created", "writer"}  # attrs that say when and by whom, not what


@pytest.fixture(scope="module")
def zygote():
    server = Zygote()
    yield server
    server.close()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kill") / "data"
    write_demo_shards(root, SMALL_DEMO)
    return root


def extract_args(cache: Path, data: Path, workers: int) -> list[str]:
    args = ["extract", "mel", "--tasks", "demo", "--cache", str(cache), "--data", str(data)]
    return [*args, "--decode-workers", str(workers)] if workers else args


def complete_parts(cache: Path) -> int:
    return len(list(cache.glob("features/*/*/*/part-*.zarr")))  # a part gets its name once complete


def test_decode_workers_die_with_a_killed_parent(zygote, demo_data, tmp_path):
    marker = f"xares-test-{uuid.uuid4().hex}"
    cache = tmp_path / "cache"
    pid = zygote.start(extract_args(cache, demo_data, 2), tmp_path / "log", {"XARES_TEST_MARKER": marker})
    try:
        # its two decode workers and multiprocessing's resource tracker (/proc shows the environment a
        # process was started with, so the forked parent itself is not among them)
        assert wait_until(lambda: len(marked_processes(marker)) >= 3, timeout=120)
        assert wait_until(lambda: complete_parts(cache) >= 1, timeout=120)
        os.kill(pid, signal.SIGKILL)
        assert os.WTERMSIG(zygote.wait(pid)) == signal.SIGKILL
        assert wait_until(lambda: not marked_processes(marker), timeout=5), marked_processes(marker)
    finally:
        kill_all(marked_processes(marker))


def store_contents(cache: Path) -> dict:
    """Every array of every part, its attrs less the volatile ones, and encoder.json."""
    contents = {}
    for encoder in (cache / "features").iterdir():
        contents[encoder.name] = (encoder / "encoder.json").read_text()
        for part in sorted(encoder.glob("*/*/part-*.zarr")):
            group = zarr.open_group(part, mode="r")
            attrs = {k: v for k, v in group.attrs.items() if k not in VOLATILE}
            arrays = {name: group[name][:] for name in sorted(group.array_keys())}
            contents[str(part.relative_to(cache))] = (attrs, arrays)
    return contents


def assert_same_store(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, str):
            assert actual[name] == value
            continue
        attrs, arrays = value
        assert actual[name][0] == attrs, name
        assert actual[name][1].keys() == arrays.keys()
        for array, data in arrays.items():
            got = actual[name][1][array]
            assert got.dtype == data.dtype and got.shape == data.shape, (name, array)
            assert np.array_equal(got, data), (name, array)


@pytest.fixture(scope="module")
def expected(zygote, demo_data, tmp_path_factory) -> dict:
    """The store of one uninterrupted run (decode workers write the same: tests/test_store.py)."""
    reference = tmp_path_factory.mktemp("reference")
    assert zygote.run(extract_args(reference / "cache", demo_data, 0), reference / "log", {}) == 0
    contents = store_contents(reference / "cache")
    assert len(contents) == N_PARTS + 1
    return contents


@pytest.mark.parametrize("workers", [0, 2])
def test_killed_at_random_moments_then_rerun_equals_one_run(zygote, demo_data, expected, tmp_path, workers):
    marker = f"xares-test-{uuid.uuid4().hex}"
    env = {"XARES_TEST_MARKER": marker}

    rng = random.Random(1234 + workers)
    cache = tmp_path / "cache"
    # Kill once at least `target` parts are complete, plus a random delay: during start-up, decoding,
    # encoding, the write of a part, its rename or the release of its lock. At most 12 of the 16 parts:
    # the last 4 (two of them train shards) take far longer than the delay, so each kill lands mid-run.
    targets = sorted(rng.sample(range(12), 5))
    try:
        for i, target in enumerate(targets):
            pid = zygote.start(extract_args(cache, demo_data, workers), tmp_path / f"kill{i}.log", env)
            assert wait_until(lambda t=target: complete_parts(cache) >= t, timeout=300)
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
            status = zygote.wait(pid)
            assert os.WIFSIGNALED(status), (target, (tmp_path / f"kill{i}.log").read_text())
            assert wait_until(lambda: marked_processes(marker) == [], timeout=5)
        assert complete_parts(cache) < N_PARTS
        log = tmp_path / "final.log"
        assert zygote.run(extract_args(cache, demo_data, workers), log, env) == 0, log.read_text()
    finally:
        kill_all(marked_processes(marker))
    assert_same_store(store_contents(cache), expected)
    encoder_id = next(iter(expected))
    reports = list(verify_store(cache, encoder_id))
    assert len(reports) == N_PARTS and all(r.ok for r in reports), [r.problems for r in reports if not r.ok]
    left = [p for p in cache.rglob("*") if ".tmp-" in p.name or p.name.endswith(".lock")]
    assert left == [] and marked_processes(marker) == []
    assert json.loads((cache / "features" / encoder_id / "encoder.json").read_text())["encoder_id"] == encoder_id
