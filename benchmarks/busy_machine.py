"""`xares demo` wall time on an idle machine and beside CPU-bound background load, side by side.

The demo's tiny models run on one torch thread (xares_llm/threads.py), so other work on the same
cores should slow it by about its share of the CPU, not collapse it. The benchmark starts and stops
its own load: `--load N` processes that spin in pure Python for as long as the busy run lasts.

    python -m benchmarks.busy_machine            # idle, then busy with 2 spinning processes
    python -m benchmarks.busy_machine --load 4

Writes benchmarks/results/busy_machine.json. Goal: busy <= 2x idle, both under 2 minutes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result

RESULT = Path(__file__).parent / "results" / "busy_machine.json"
GOAL_RATIO = 2.0
GOAL_SECONDS = 120.0


def spin(stop: multiprocessing.Event) -> None:
    """Burn one core until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def demo_seconds(workdir: Path) -> float:
    """Wall time of one fresh `xares demo` (data, extraction, training, evaluation, scoring)."""
    shutil.rmtree(workdir, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the defaults a user gets
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "xares_llm.cli.main", "demo", "--workdir", str(workdir)],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"xares demo failed:\n{done.stderr[-2000:]}")
    return elapsed


def load_average() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=2, help="CPU-bound background processes in the busy run")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="xares-busy-"))
    try:
        load_before = load_average()
        idle = demo_seconds(base / "idle")
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.load)]
        for process in spinners:
            process.start()
        try:
            busy = demo_seconds(base / "busy")
            load_busy = load_average()
        finally:
            stop.set()
            for process in spinners:
                process.join(timeout=10)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ratio = busy / idle
    result = {
        "idle_seconds": round(idle, 1),
        "busy_seconds": round(busy, 1),
        "busy_over_idle": round(ratio, 2),
        "background_processes": args.load,
        "cpu_count": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_busy": round(load_busy, 2),
        "goal": f"busy <= {GOAL_RATIO}x idle, both <= {GOAL_SECONDS:.0f} s",
        "goal_met": ratio <= GOAL_RATIO and max(idle, busy) <= GOAL_SECONDS,
    }
    write_result(RESULT, result)
    print(f"demo idle {idle:.1f} s, busy ({args.load} spinning processes) {busy:.1f} s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
