"""Part locks between real processes: takeover is atomic, reused pids and dead machines do not block."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time

from lockers import contend, hold

from xares_llm.cache import PartLock, part_name, read_part_attrs
from xares_llm.cache.locks import OTHER_HOST_EXPIRY_S, process_start
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import load_task

DEAD = f"{socket.gethostname()}-999999999"  # a lock left by a killed run: no such process
TRIALS = 40


def test_contended_stale_lock_has_exactly_one_winner(tmp_path):
    paths = []
    for index in range(TRIALS):
        part = tmp_path / f"part-{index}.zarr"
        PartLock(part).path.write_text(DEAD)
        paths.append(str(part))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=contend, args=(paths, barrier, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(4 * TRIALS)]
    for worker in workers:
        worker.join(timeout=60)
    winners = [sum(won for index, won in outcomes if index == trial) for trial in range(TRIALS)]
    assert winners == [1] * TRIALS
    assert not list(tmp_path.glob("*.lock"))


def write_record(lock: PartLock, **fields) -> None:
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(json.dumps({"host": socket.gethostname(), **fields}))


def test_reused_pid_does_not_block(tmp_path):
    lock = PartLock(tmp_path / "part-a.zarr")
    write_record(lock, pid=os.getpid(), start=process_start(os.getpid()) + 1)  # our pid, another start time
    assert lock.acquire() and json.loads(lock.path.read_text())["start"] == process_start(os.getpid())
    lock.release()


def test_a_free_flock_is_free_whatever_the_record_says(tmp_path):
    """A live pid on this host, with its start time, none, or the older text: no flock, no holder."""
    part = tmp_path / "part-a.zarr"
    for record in (
        {"pid": 1, "start": process_start(1)},
        {"pid": 1, "start": None},
        {"pid": os.getppid()},
    ):
        write_record(PartLock(part), **record)
        lock = PartLock(part)
        assert lock.acquire(), record
        lock.release()
    PartLock(part).path.write_text(f"{socket.gethostname()}-1")
    lock = PartLock(part)
    assert lock.acquire()
    lock.release()


def test_lock_of_a_killed_holder_is_free_at_once(tmp_path):
    part = tmp_path / "part-b.zarr"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold, args=(str(part), ready))
    holder.start()
    assert ready.wait(120)
    assert not PartLock(part).acquire()  # held by a live process
    holder.kill()
    holder.join()
    lock = PartLock(part)
    assert lock.acquire()
    lock.release()


def test_other_host_lock_expires(tmp_path):
    lock = PartLock(tmp_path / "part-c.zarr")
    lock.path.write_text(json.dumps({"host": "another-machine", "pid": 42, "start": 7}))
    assert not lock.acquire()  # fresh: that machine may be working on it
    old = time.time() - OTHER_HOST_EXPIRY_S - 60
    os.utime(lock.path, (old, old))
    assert lock.acquire()
    lock.release()


def test_stale_lock_beside_a_complete_part_is_removed(tmp_path, demo_store):
    tasks = [load_task("demo_count")]
    first = extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"])
    part = first.written[0]
    attrs = read_part_attrs(part)
    PartLock(part).path.write_text(DEAD)  # killed after the rename, before the release
    again = extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"])
    assert again.up_to_date == 2 and not again.written
    assert not PartLock(part).path.exists() and read_part_attrs(part) == attrs
    assert part.name == part_name(tasks[0].dataset.shards("test")[0])
