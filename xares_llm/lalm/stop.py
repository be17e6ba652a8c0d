"""Ctrl-C and SIGTERM during training: finish the step, checkpoint, then stop.

A signal arriving mid-step would leave the optimiser and the schedule out of step with each other,
so the handler only records the request; the loop checks `requested` after each step, saves a
checkpoint and raises `KeyboardInterrupt`. A second signal stops at once (the default behaviour).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopRequest:
    """Which signal asked the loop to stop, if any."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None


@contextlib.contextmanager
def deferred_stop(enabled: bool = True) -> Iterator[StopRequest]:
    """Catch SIGINT and SIGTERM into a `StopRequest` while the block runs (main thread only; elsewhere,
    or when not `enabled`, the signals keep their usual handlers)."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame) -> None:
        if request.requested:  # the second one: stop now
            raise KeyboardInterrupt
        request.signal = signal.Signals(signum).name

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
