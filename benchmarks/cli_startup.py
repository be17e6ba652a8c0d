"""Start-up cost of each `xares` command: `--help` and a typical argument error, each a fresh process.

The goal is <= 0.5 s of CPU for `xares --help` and for every error about an argument, a path, a run
dir or a config: those are answered before torch, transformers or zarr load. Per case: child-process
CPU and wall time (median and IQR of 5 runs after a warm-up), and, from one `python -X importtime`
run, whether a heavy library was imported and the slowest top-level imports, as evidence.

    python -m benchmarks.cli_startup [--repeats 5] [--out benchmarks/results/cli_startup.json]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import load_average, summary, write_result

HEAVY = ("torch", "transformers", "zarr", "numpy", "pydantic")
GOAL_CPU_S = 0.5
COMMANDS = ("demo", "check", "extract", "train", "eval", "score", "probe", "run", "download", "report", "bench", "runs")
ERRORS = {
    "eval of a missing run": ["eval", "runs/does-not-exist"],
    "score of a missing dir": ["score", "runs/does-not-exist"],
    "runs of a missing dir": ["runs", "does-not-exist"],
    "report of a missing dir": ["report", "runs/does-not-exist"],
    "extract, bad split": ["extract", "mel", "--tasks", "demo", "--split", "dev"],
    "run, bad track": ["run", "mel", "--track", "C"],
    "train, no mixture": ["train", "mel"],
    "train, bad --set": ["train", "mel", "--mixture", "demo", "--set", "optim.lrr=1"],
    "probe, bad head": ["probe", "mel", "--tasks", "demo", "--heads", "svm"],
}


def cases() -> dict[str, list[str]]:
    found = {"xares --help": ["--help"], "xares tasks --help": ["tasks", "--help"]}
    found |= {f"xares {c} --help": [c, "--help"] for c in COMMANDS}
    return found | ERRORS


def run_once(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one CLI process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xares_llm.cli.main", *args], cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_evidence(args: list[str], cwd: Path) -> dict:
    """From `python -X importtime`: heavy libraries imported, and the five slowest top-level imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "xares_llm.cli.main", *args], cwd=cwd, capture_output=True, text=True
    )
    top = []
    loaded = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue  # the header line
        loaded.add(name.strip())
        if not name.startswith("  "):  # top level: one space after the bar
            top.append((int(cumulative), name.strip()))
    slowest = [{"module": m, "cumulative_ms": round(us / 1000, 1)} for us, m in sorted(top, reverse=True)[:5]]
    return {"heavy_imported": [m for m in HEAVY if m in loaded], "slowest_top_level_imports": slowest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cli_startup.json"))
    options = parser.parse_args()
    load_before = load_average()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for name, args in cases().items():
            run_once(args, cwd)  # warm-up: the page cache, .pyc files
            walls, cpus = zip(*(run_once(args, cwd) for _ in range(options.repeats)), strict=True)
            cpu = summary(list(cpus))
            rows[name] = {
                "args": args,
                "wall_s": summary(list(walls)),
                "cpu_s": cpu,
                "goal_met": cpu["median"] <= GOAL_CPU_S,
                **import_evidence(args, cwd),
            }
            print(f"{name:32s} cpu {cpu['median']:.3f} s  wall {rows[name]['wall_s']['median']:.3f} s", flush=True)
    write_result(
        options.out,
        {
            "benchmark": "cli_startup",
            "goal_cpu_s": GOAL_CPU_S,
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "load_average": [load_before, load_average()],
            "cases": rows,
        },
    )


if __name__ == "__main__":
    main()
