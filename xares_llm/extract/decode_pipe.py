"""Decoded windows from background decoders to the encoder loop, a bounded few at a time.

Each shard in flight gets a queue of `QUEUE_WINDOWS` windows (`xares_llm.extract.decode.decode_windows`):
a decoder that runs ahead blocks on its full queue instead of filling memory, so memory is bounded
by the window size, not the shard size. Decoders are one thread, or `workers` spawned processes
that die with this one (`xares_llm.workers`). A process pool's workers receive their queues when
they start (multiprocessing queues cannot travel as task arguments); a unit is given a free queue
by its slot number. Shards are decoded in the order they were submitted, and the encoder reads
them in that order, so the earliest shard's decoder is always running and nothing deadlocks.

On close (an error, Ctrl-C, or the end) a stop event tells blocked decoders to give up, and the
queues are drained so no worker waits on a pipe nobody reads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from xares_llm.extract.decode import (
    DEFAULT_WINDOW_CLIPS,
    DEFAULT_WINDOW_SECONDS,
    DecodedWindow,
    WorkUnit,
    decode_windows,
)
from xares_llm.workers import die_with_parent

QUEUE_WINDOWS = 1  # decoded windows waiting per shard, besides the one the decoder is building
POLL_S = 0.2  # how often a blocked put or get looks at the stop event or the decoder's fate

_worker_queues: list[Any] = []  # in a decode worker process: the queues by slot
_worker_stop: Any = None


@dataclass(frozen=True)
class WindowLimits:
    seconds: float = DEFAULT_WINDOW_SECONDS
    clips: int = DEFAULT_WINDOW_CLIPS


def stream_windows(unit: WorkUnit, limits: WindowLimits, channel: Any, stop: Any) -> None:
    """Decode `unit` window by window into `channel`, timing each window's decode (not its wait)."""
    if stop.is_set():  # the pipe closed before this shard's turn came
        return
    windows = decode_windows(unit, limits.seconds, limits.clips)
    while True:
        started = time.perf_counter()
        window = next(windows, None)
        if window is None:
            return
        window.decode_s = time.perf_counter() - started
        while True:
            if stop.is_set():
                return
            try:
                channel.put(window, timeout=POLL_S)
                break
            except queue.Full:
                continue


def _start_worker(parent_pid: int, queues: list[Any], stop: Any) -> None:
    global _worker_queues, _worker_stop
    die_with_parent(parent_pid)
    _worker_queues, _worker_stop = queues, stop


def _stream_in_worker(unit: WorkUnit, limits: WindowLimits, slot: int) -> None:
    stream_windows(unit, limits, _worker_queues[slot], _worker_stop)


class DecodePipe:
    """Shards submitted in order, their windows read back in the same order."""

    def __init__(self, workers: int, limits: WindowLimits = WindowLimits()):
        self.limits = limits
        self.depth = max(1, workers) + 1  # shards decoding at once, the one being encoded included
        self.processes = workers > 0
        self.pool: Executor
        if self.processes:
            context = multiprocessing.get_context("spawn")  # no fork after torch
            self.queues = [context.Queue(QUEUE_WINDOWS) for _ in range(self.depth)]
            self.stop = context.Event()
            self.pool = ProcessPoolExecutor(
                workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), self.queues, self.stop)
            )
        else:
            self.queues = [queue.Queue(QUEUE_WINDOWS) for _ in range(self.depth)]
            self.stop = threading.Event()
            self.pool = ThreadPoolExecutor(1, "xares-decode")
        self.free = list(range(self.depth))
        self.pending: deque[tuple[Any, int, Future]] = deque()
        self.wait_s = 0.0  # seconds the reader waited for a decoded window

    @property
    def full(self) -> bool:
        return len(self.pending) >= self.depth

    def submit(self, unit: WorkUnit, tag: Any) -> None:
        """Start decoding `unit`; `tag` comes back with its windows."""
        slot = self.free.pop(0)
        if self.processes:
            future = self.pool.submit(_stream_in_worker, unit, self.limits, slot)
        else:
            future = self.pool.submit(stream_windows, unit, self.limits, self.queues[slot], self.stop)
        self.pending.append((tag, slot, future))

    def next_tag(self) -> Any:
        return self.pending[0][0]

    def windows(self) -> Iterator[DecodedWindow]:
        """The windows of the earliest submitted shard, up to its last; a decoder's error is raised here."""
        _, slot, future = self.pending[0]
        channel = self.queues[slot]
        while True:
            started = time.perf_counter()
            window = self._get(channel, future)
            self.wait_s += time.perf_counter() - started
            if window.last:
                self.pending.popleft()
                self.free.append(slot)
            yield window
            if window.last:
                return

    @staticmethod
    def _get(channel: Any, future: Future) -> DecodedWindow:
        while True:
            try:
                return channel.get(timeout=POLL_S)
            except queue.Empty:
                if future.done() and future.exception() is not None:
                    raise future.exception() from None

    def close(self) -> None:
        """Stop every decoder, drain what they queued, and wait for them."""
        self.stop.set()
        for _, _, future in self.pending:
            future.cancel()
        while any(not future.done() for _, _, future in self.pending):
            self._drain()
            time.sleep(POLL_S / 4)
        self._drain()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()

    def _drain(self) -> None:
        for channel in self.queues:
            with contextlib.suppress(queue.Empty):
                while True:
                    channel.get_nowait()
