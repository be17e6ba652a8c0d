"""`xares demo` wall time on an idle machine and beside CPU-bound background load, side by side.

The demo's tiny models run on one torch thread (xares_llm/threads.py), so other work on the same
cores should slow it by about its share of the CPU, not collapse it. The benchmark starts and stops
its own load: `--load N` processes that spin in pure Python for as long as the busy run lasts.

    python -m benchmarks.busy_machine            # idle, then busy with 2 spinning processes
    python -m benchmarks.busy_machine --load 4
    python -m benchmarks.busy_machine --quick    # `xares run mel` on the demo data with 80 steps instead

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
QUICK_STEPS = 80


def spin(stop: multiprocessing.Event) -> None:
    """Burn one core until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def demo_seconds(workdir: Path, quick_data: Path | None = None) -> float:
    """Wall time of one fresh `xares demo` (data, extraction, training, evaluation, scoring), or with
    `quick_data` of `xares run mel` on that demo data with QUICK_STEPS steps (extraction to scoring)."""
    shutil.rmtree(workdir, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the defaults a user gets
    command = ["demo", "--workdir", str(workdir)]
    if quick_data is not None:
        command = ["run", "mel", "--mixture", "demo", "--recipe", "demo", "--steps", str(QUICK_STEPS)]
        command += ["--data", str(quick_data), "--cache", str(workdir / "cache"), "--run-dir", str(workdir / "run")]
    started = time.perf_counter()
    command = [sys.executable, "-m", "xares_llm.cli.main", *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"xares {command[3]} failed:\n{done.stderr[-2000:]}")
    return elapsed


def load_average() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=2, help="CPU-bound background processes in the busy run")
    parser.add_argument("--quick", action="store_true", help=f"`xares run mel` with {QUICK_STEPS} steps, not the demo")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="xares-busy-"))
    try:
        quick_data = None
        if args.quick:
            from xares_llm.audio.demo_data import write_demo_shards

            quick_data = base / "data"
            write_demo_shards(quick_data)
        load_before = load_average()
        idle = demo_seconds(base / "idle", quick_data)
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.load)]
        for process in spinners:
            process.start()
        try:
            busy = demo_seconds(base / "busy", quick_data)
            load_busy = load_average()
        finally:
            stop.set()
            for process in spinners:
                process.join(timeout=10)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ratio = busy / idle
    result = {
        "quick": args.quick,
        "command": f"xares run mel --mixture demo --steps {QUICK_STEPS}" if args.quick else "xares demo",
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
    write_result(args.out, result)
    print(f"demo idle {idle:.1f} s, busy ({args.load} spinning processes) {busy:.1f} s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
