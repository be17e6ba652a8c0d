"""Targets of spawned test processes, in a module that imports little, so each starts quickly."""

from __future__ import annotations

import time
from pathlib import Path

from xares_llm.audio.demo_data import DemoSize, write_demo_shards
from xares_llm.cache.locks import PartLock


def contend(paths: list[str], barrier, results) -> None:
    """In each of several processes: all try the same stale lock at once, hold it until all tried."""
    for index, path in enumerate(paths):
        barrier.wait()
        lock = PartLock(path)
        won = lock.acquire()
        barrier.wait()  # nobody releases before every contender has tried
        results.put((index, won))
        lock.release()


def hold(path: str, ready) -> None:
    lock = PartLock(path)
    assert lock.acquire()
    ready.set()
    time.sleep(600)


def write_demo_together(root: str, barrier) -> None:
    """Two extractors on a fresh data dir: both write the demo shards at the same moment."""
    barrier.wait()
    write_demo_shards(Path(root), DemoSize(train_clips_per_shard=3, test_clips_per_shard=2))
