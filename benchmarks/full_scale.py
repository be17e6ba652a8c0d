"""Full-scale rehearsal: every stage at the benchmark's real counts, each in its own process.

Builds the synthetic replica (`benchmarks/replica.py`: every official task's shards, counts times
`--scale`, audio `--seconds-scale` times its real length), then runs the stages a user runs, through
the real CLI (`python -m xares_llm.cli.main ...`), one process each: extract --plan, extract (`mel`),
cache ls, cache verify (beside `cat` of the same files), the count-bound set-up of training measured
directly (`benchmarks/scale_probes.py`), train on Track A and Track B (demo LLM, a few hundred steps,
two seeds), eval on the full test sets, score (FENSE/DATE with a tiny random sentence model),
report of two runs (1000 resamples, paired differences), probe, cache push / pull, runs.

Per stage: wall, CPU (user + system of the process and its children), peak RSS (the largest of
them, from wait4), its count, the exit status and the load average before and after. This runner
imports nothing heavy (no numpy, torch): Linux carries the parent's RSS at fork into a child's
peak, so a small parent keeps every stage's peak its own. The budgets
are those of a 2-core machine at full counts (model-bound work excluded); `met` is judged only for
a run at `--scale 1`.

    python -m benchmarks.full_scale --quick                       # 1/20 of the counts, minutes
    nice python -m benchmarks.full_scale --scale 1 --seconds-scale 0.02 --out ...json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "xares_llm.cli.main"]
QUICK_SCALE = 0.05
TRACKS = {"A": "task1", "B": "task2"}
# Budgets at full counts on a 2-core machine: (what, stage, time or memory keys, limit, unit). A key
# is one of the stage's own JSON line (a probe) or of its process record (cpu_s, peak_rss_mb). Times
# are judged on CPU seconds: the work here is single-threaded, so on an idle machine its wall time is
# its CPU time, while on this shared one wall runs 3-6x longer; the table shows the wall beside it.
BUDGETS = [
    ("open the Track A train store", "open_track_a", ("open_cpu_s",), 3.0, "s"),
    ("Track A store metadata in memory", "open_track_a", ("metadata_mb",), 500.0, "MB"),
    ("targets + sampler set-up, Track A", "open_track_a", ("targets_cpu_s", "sampler_cpu_s"), 5.0, "s"),
    ("score Track A test sets", "score_a1", ("cpu_s",), 60.0, "s"),
    ("score Track B test sets (incl. sentence model)", "score_b1", ("cpu_s",), 60.0, "s"),
    ("FENSE + DATE memory", "score_b1", ("peak_rss_mb",), 2048.0, "MB"),
    ("report of two Track A runs", "report_a", ("cpu_s",), 300.0, "s"),
    ("report of two Track A runs, memory", "report_a", ("peak_rss_mb",), 4096.0, "MB"),
    ("report of two Track B runs", "report_b", ("cpu_s",), 300.0, "s"),
    ("report of two Track B runs, memory", "report_b", ("peak_rss_mb",), 4096.0, "MB"),
    # 3x one 2-hour clip's decoded float32 (439 MB) plus the process's own peak on short shards with
    # the same encoder (about 414 MB: Python, torch, the mel forward)
    ("extract one 2-hour clip, memory", "long_clip_extract", ("peak_rss_mb",), 3 * 439.5 + 414, "MB"),
]
WALL_KEYS = {"open_cpu_s": "open_s", "targets_cpu_s": "targets_s", "sampler_cpu_s": "sampler_s", "cpu_s": "wall_s"}


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def mixture_tasks(name: str, field: str = "evaluate") -> list[str]:
    """A packaged mixture's tasks, read as YAML (the library's loader would import pydantic and more)."""
    data = yaml.safe_load((ROOT / "configs" / "mixtures" / f"{name}.yaml").read_text())
    return list(data[field])


@dataclass
class Manifest:
    """What benchmarks/replica.py built: per task and split, shards, clips and (clip, target) pairs.

    Kept here, not in the builder, so the runner reads it without importing numpy."""

    scale: float
    seconds_scale: float
    counts: dict

    def total(self, field: str, split: str | None = None, tasks: list[str] | None = None) -> int:
        return sum(
            c[field]
            for task, splits in self.counts.items()
            if tasks is None or task in tasks
            for s, c in splits.items()
            if split in (None, s)
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls(**json.loads(path.read_text()))


@dataclass
class StageResult:
    name: str
    command: list[str]
    count: dict
    rc: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    measured: dict = field(default_factory=dict)  # a probe's own JSON line


def run_stage(name: str, command: list[str], count: dict, log_dir: Path, env: dict) -> StageResult:
    """Run one command to completion; wall, CPU and peak RSS from the kernel's account of it (wait4)."""
    result = StageResult(name, [str(c) for c in command], count, load_before=load_average())
    log = log_dir / f"{name}.log"
    print(f"== {name}: {' '.join(result.command[2:] if command[:2] == CLI[:2] else result.command)}", flush=True)
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(result.command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        result.wall_s = round(time.perf_counter() - start, 3)
    process.returncode = os.waitstatus_to_exitcode(status)
    result.rc = process.returncode
    result.cpu_s = round(usage.ru_utime + usage.ru_stime, 3)
    result.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB
    result.load_after = load_average()
    lines = log.read_text(errors="replace").splitlines()
    if lines and lines[-1].startswith("{"):
        result.measured = json.loads(lines[-1])
    status_text = "ok" if result.rc == 0 else f"FAILED rc={result.rc} (see {log})"
    print(f"   {result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU, {result.peak_rss_mb:.0f} MB: {status_text}")
    if result.rc != 0:
        print("\n".join(lines[-15:]))
    return result


def budgets(stages: list[dict], full: bool) -> list[dict]:
    """Each budget with its measured value (and the wall beside a time); `met` is judged only at full counts."""
    by_name = {s["name"]: s for s in stages}
    rows = []
    for what, stage, keys, limit, unit in BUDGETS:
        if stage not in by_name:
            continue
        s = by_name[stage]
        value = sum(s["measured"].get(k, s.get(k, 0.0)) for k in keys)
        row = {"what": what, "stage": stage, "value": round(value, 3), "limit": limit, "unit": unit}
        if unit == "s":
            row["wall_s"] = round(sum(s["measured"].get(WALL_KEYS[k], s.get(WALL_KEYS[k], 0.0)) for k in keys), 3)
        rows.append(row | {"met": (s["rc"] == 0 and value <= limit) if full else None})
    return rows


def store_id(cache: Path) -> str:
    ids = sorted(p.name for p in (cache / "features").iterdir() if p.is_dir())
    if len(ids) != 1:
        raise SystemExit(f"expected one encoder store under {cache}/features, found {ids}")
    return ids[0]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sentence_model_stage(work: Path) -> tuple[str, list, dict]:
    """The tests' tiny random Sentence-BERT over the replica's caption vocabulary, made in its own process."""
    code = (
        "import sys; from benchmarks.replica import WORDS; from xares_llm.metrics.dummies import write_tiny_sbert; "
        "write_tiny_sbert(sys.argv[1], WORDS, hidden_size=64, num_heads=4, initializer_range=0.5)"
    )
    return "sentence_model", [sys.executable, "-c", code, str(work / "sbert")], {}


def plan_stages(args: argparse.Namespace, work: Path, manifest: Manifest) -> list[tuple[str, list, dict]]:
    """Every stage before the store exists (its id is read after extraction)."""
    data, cache = work / "data", work / "cache"
    common = ["--data", data, "--cache", cache, "--device", "cpu", "--dtype", "float16"]
    counts = {"clips": manifest.total("clips"), "parts": manifest.total("shards")}
    return [
        ("extract_plan", [*CLI, "extract", "mel", "--tasks", "all", *common, "--plan"], counts),
        ("extract", [*CLI, "extract", "mel", "--tasks", "all", *common], counts),
    ]


def store_stages(args: argparse.Namespace, work: Path, manifest: Manifest, encoder_id: str) -> list:
    cache, runs, sbert = work / "cache", work / "runs", str(work / "sbert")
    store = cache / "features" / encoder_id
    counts = {"clips": manifest.total("clips"), "parts": manifest.total("shards")}
    files = [p for p in store.rglob("*") if p.is_file()]
    # the same bytes read by cat: what `cache verify` is bound by
    cat = ["bash", "-c", f"find {store} -type f -print0 | xargs -0 cat > /dev/null"]
    store_counts = counts | {"files": len(files), "bytes": folder_bytes(store)}
    stages = [
        ("cache_ls", [*CLI, "cache", "ls", "--cache", cache], counts),
        ("cat_store", cat, store_counts),
        ("cache_verify", [*CLI, "cache", "verify", encoder_id, "--cache", cache], store_counts),
    ]
    probe = [sys.executable, "-m", "benchmarks.scale_probes", "open", str(cache), encoder_id]
    for track, mixture in TRACKS.items():
        train_counts = {"clips": manifest.total("clips", "train", mixture_tasks(mixture, "weights"))}
        stages.append((f"open_track_{track.lower()}", [*probe, "--mixture", mixture], train_counts))
    eval_set = ["--set", f"decoding.max_new_tokens={args.max_new_tokens}", "--set", "eval_batch_size=64"]
    for seed in (1, 2):
        for track, mixture in TRACKS.items():
            run = runs / f"{track.lower()}{seed}"
            tasks = mixture_tasks(mixture)
            test = {"clips": manifest.total("clips", "test", tasks)}
            pairs = {"pairs": manifest.total("targets", "test", tasks)}
            train = [*CLI, "train", encoder_id, "--mixture", mixture, "--recipe", "demo", "--steps", args.steps]
            train += ["--run-dir", run, "--cache", cache, "--device", "cpu", "--set", f"seed={seed}", *eval_set]
            stages.append((f"train_{track.lower()}{seed}", train, {"steps": args.steps}))
            evaluate = [*CLI, "eval", run, "--device", "cpu", "--sbert", sbert, "--echecker", "none"]
            stages.append((f"eval_{track.lower()}{seed}", evaluate, test))
            if seed == 1:
                score = [*CLI, "score", run, "--sbert", sbert, "--echecker", "none"]
                stages.append((f"score_{track.lower()}{seed}", score, pairs))
    for track in TRACKS:
        two = [runs / f"{track.lower()}1", runs / f"{track.lower()}2"]
        report = [*CLI, "report", *two, "--out", work / f"report-{track.lower()}", "--resamples", "1000"]
        stages.append((f"report_{track.lower()}", [*report, "--sbert", sbert, "--echecker", "none"], {"runs": 2}))
    probe = [*CLI, "probe", encoder_id, "--tasks", "task1", "--cache", cache, "--out", work / "probe-a"]
    stages += [
        (
            "probe_track_a",
            [*probe, "--device", "cpu"],
            counts,
        ),
        ("cache_push", [*CLI, "cache", "push", encoder_id, work / "pushed", "--cache", cache], store_counts),
        ("cache_pull", [*CLI, "cache", "pull", encoder_id, work / "pushed", "--cache", work / "pulled"], store_counts),
        ("runs", [*CLI, "runs", runs], {"runs": 4}),
    ]
    return stages


def run_all(args: argparse.Namespace, work: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start, load = time.perf_counter(), load_average()
    build = subprocess_build(args, work, logs, env)
    manifest = Manifest.load(work / "data" / "replica.json")
    results = [build]
    for name, command, count in [sentence_model_stage(work), *plan_stages(args, work, manifest)]:
        results.append(run_stage(name, command, count, logs, env))
    if results[-1].rc == 0:
        encoder_id = store_id(work / "cache")
        for name, command, count in store_stages(args, work, manifest, encoder_id):
            if args.only and name not in args.only:
                continue
            results.append(run_stage(name, command, count, logs, env))
    stages = [asdict(r) for r in results]
    return {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "work")},
        "replica": asdict(manifest),
        "load_average_at_start": load,
        "total_wall_s": round(time.perf_counter() - start, 1),
        "stages": stages,
        "budgets": budgets(stages, full=args.scale >= 1),
    }


def subprocess_build(args: argparse.Namespace, work: Path, logs: Path, env: dict) -> StageResult:
    """The replica's shards, built in a process of its own so its cost is measured like a stage."""
    command = [sys.executable, "-m", "benchmarks.replica", str(work / "data"), "--scale", str(args.scale)]
    command += ["--seconds-scale", str(args.seconds_scale), "--workers", str(args.workers)]
    result = run_stage("build_replica", command, {}, logs, env)
    if result.rc != 0:
        raise SystemExit("building the replica failed")
    manifest = Manifest.load(work / "data" / "replica.json")
    result.count = {"clips": manifest.total("clips"), "parts": manifest.total("shards")}
    return result


def table(result: dict) -> list[str]:
    lines = ["| stage | count | wall s | CPU s | peak RSS MB | load avg |", "|---|---|---:|---:|---:|---|"]
    for s in result["stages"]:
        count = ", ".join(f"{v} {k}" for k, v in s["count"].items())
        status = "" if s["rc"] == 0 else f" (**rc {s['rc']}**)"
        load = f"{s['load_before'][0]} → {s['load_after'][0]}"
        cost = f"{s['wall_s']:.1f} | {s['cpu_s']:.1f} | {s['peak_rss_mb']:.0f}"
        lines.append(f"| {s['name']}{status} | {count} | {cost} | {load} |")
    lines += [
        "",
        "| budget (full counts, 2 cores) | stage | measured (CPU; wall) | limit | met |",
        "|---|---|---:|---:|---|",
    ]
    for b in result["budgets"]:
        met = {True: "yes", False: "**no**", None: "(not full counts)"}[b["met"]]
        value, limit = f"{b['value']:g} {b['unit']}", f"{b['limit']:g} {b['unit']}"
        value += f" ({b['wall_s']:g} s wall)" if "wall_s" in b else ""
        lines.append(f"| {b['what']} | {b['stage']} | {value} | {limit} | {met} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the official clip counts")
    parser.add_argument("--seconds-scale", type=float, default=0.05, help="audio length / drawn duration")
    parser.add_argument("--quick", action="store_true", help=f"--scale {QUICK_SCALE}, 100 steps")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="processes writing shards")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every stage")
    parser.add_argument("--only", nargs="*", help="run only these stages after extraction")
    parser.add_argument("--work", type=Path, help="working folder (kept) [default: a temporary one, removed]")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "full_scale.json")
    args = parser.parse_args()
    if args.quick:
        args.scale, args.steps = QUICK_SCALE, 100
        args.out = args.out.with_name("full_scale_quick.json") if args.out.name == "full_scale.json" else args.out
    work = args.work or Path(tempfile.mkdtemp(prefix="xares-full-scale-"))
    try:
        result = run_all(args, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result["table"] = table(result)
    machine = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "load_average_at_end": load_average()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, **result}, indent=2))
    print(f"wrote {args.out}")
    print("\n".join(result["table"]))
    if any(s["rc"] != 0 for s in result["stages"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
