"""The count-bound stages against a store at the full counts (benchmarks/full_counts.py), timed.

Each stage is a process of its own, measured as benchmarks/full_scale.py measures a stage: store
open and training set-up (benchmarks/scale_probes.py), cache ls, verify beside `cat` of the same
files, a short `xares train` (its step time beside the quick rehearsal's on a 20x smaller store),
and `xares score` / `xares report` of the quick rehearsal's runs with their predictions repeated up
to the full test counts (the metric code sees full-size inputs; the predictions are the quick
run's). The JSON is rewritten after every stage, so a run cut short keeps what it measured.

    python -m benchmarks.measure_counts CACHE --runs QUICK_WORK/runs --work DIR [--probe]

Imports nothing heavy, like full_scale (a small parent keeps each child's peak RSS its own).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from benchmarks.full_scale import CLI, ROOT, budgets, folder_bytes, run_stage, table


def measure(args: argparse.Namespace) -> None:
    """The count-bound stages at full counts, each in its own process; JSON and tables as full_scale writes."""
    (encoder_id,) = [p.name for p in (args.cache / "features").iterdir()]
    store, work, sbert = args.cache / "features" / encoder_id, args.work, str(args.runs.parent / "sbert")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    files = [p for p in store.rglob("*") if p.is_file()]
    counts = {"files": len(files), "bytes": folder_bytes(store)}
    probe = [sys.executable, "-m", "benchmarks.scale_probes", "open", str(args.cache), encoder_id]
    stages = [
        ("open_track_a", [*probe, "--mixture", "task1"], {}),
        ("open_track_b", [*probe, "--mixture", "task2"], {}),
        ("cache_ls", [*CLI, "cache", "ls", "--cache", args.cache], {}),
        ("cat_store", ["bash", "-c", f"find {store} -type f -print0 | xargs -0 cat > /dev/null"], counts),
        ("cache_verify", [*CLI, "cache", "verify", encoder_id, "--cache", args.cache], counts),
    ]
    noise = work / "noise-cache"
    noise_store = noise / "features" / encoder_id
    like = store / "encoder.json"
    stages += [
        ("noise_store", [sys.executable, "-m", "benchmarks.full_counts", "noise", noise, "--like", like], {}),
        ("noise_cat", ["bash", "-c", f"find {noise_store} -type f -print0 | xargs -0 cat > /dev/null"], {}),
        ("noise_verify", [*CLI, "cache", "verify", encoder_id, "--cache", noise], {}),
    ]
    train = [*CLI, "train", encoder_id, "--mixture", "task1", "--recipe", "demo", "--steps", args.steps]
    stages.append(("train_a1", [*train, "--run-dir", work / "train-a", "--cache", args.cache, "--device", "cpu"], {}))
    for run in ("a1", "a2", "b1", "b2"):
        target = work / "runs" / run
        widen = [sys.executable, "-m", "benchmarks.full_counts", "widen", args.runs / run, target]
        stages.append((f"widen_{run}", widen, {}))
        score = [*CLI, "score", target, "--sbert", sbert, "--echecker", "none"]  # report reads scores.json
        stages.append((f"score_{run}", score, {}))
    for track in ("a", "b"):
        runs = [work / "runs" / f"{track}1", work / "runs" / f"{track}2"]
        report = [*CLI, "report", *runs, "--out", work / f"report-{track}", "--resamples", "1000"]
        stages.append((f"report_{track}", [*report, "--sbert", sbert, "--echecker", "none"], {"runs": 2}))
    if args.long_clip_hours:
        stages += long_clip_stages(work, args.long_clip_hours, env)
    if args.probe:
        probe = [*CLI, "probe", encoder_id, "--tasks", "task1", "--cache", args.cache, "--out", work / "probe-a"]
        stages.append(("probe_track_a", [*probe, "--device", "cpu"], {}))
    if args.only:
        stages = [s for s in stages if s[0] in args.only]
    # a rerun of some stages replaces them in the results already written
    earlier = json.loads(args.out.read_text())["stages"] if args.only and args.out.is_file() else []
    results = []
    for name, command, count in stages:
        if name.startswith("score_"):  # the widened run's (clip, reference) pairs
            count = {"pairs": reference_pairs(work / "runs" / name.removeprefix("score_"))}
        if name in ("noise_cat", "noise_verify"):  # the bytes read, known once the store is written
            count = {"bytes": folder_bytes(noise_store)}
        results.append(asdict(run_stage(name, command, count, logs, env)))
        done = {r["name"] for r in results}
        write_measured(args, [r for r in earlier if r["name"] not in done] + results, [s[0] for s in stages])


def write_measured(args: argparse.Namespace, stages: list[dict], planned: list[str]) -> None:
    """Written after every stage, so a run cut short keeps what it measured (marked partial)."""
    for s in stages:  # a probe reports its own counts
        s["count"] = s["count"] or {k: s["measured"][k] for k in ("clips", "parts", "targets") if k in s["measured"]}
    done = {s["name"] for s in stages}
    result = {"not_yet_run": [n for n in planned if n not in done], "stages": stages}
    result["budgets"] = budgets(stages, full=True)
    full, small = args.work / "train-a" / "log.jsonl", args.runs / "a1" / "log.jsonl"
    if full.is_file() and small.is_file():  # the training step on the full store beside the 20x smaller one
        speeds = {name: median_tokens_per_s(path) for name, path in (("full", full), ("runs_store", small))}
        ratio = round(speeds["runs_store"] / speeds["full"], 3)
        result["train_tokens_per_s"] = speeds | {"runs_store_over_full": ratio, "runs_store_log": str(small)}
    result["table"] = table(result)
    args.out.write_text(json.dumps(result, indent=2))


LONG_CLIP_TASK = """name: longclip
track: user
dataset: {name: longclip, train: ["LongClip/train/long_000000.tar"], test: ["LongClip/train/long_000000.tar"]}
labels: {train: label, test: label}
prompt: "What is it?"
metric: {name: accuracy}
"""


def long_clip_stages(work: Path, hours: float, env: dict) -> list[tuple[str, list, dict]]:
    """One shard holding one clip of `hours`, then `xares extract mel` of it (its peak RSS is the point)."""
    config = work / "long-config" / "tasks"
    config.mkdir(parents=True, exist_ok=True)
    (config / "longclip.yaml").write_text(LONG_CLIP_TASK)
    seconds = hours * 3600
    code = (
        "import sys, numpy as np; from pathlib import Path; from xares_llm.audio.demo_data import tone, write_tar; "
        "audio = tone(440.0, float(sys.argv[2]), np.random.default_rng(0)); "
        "write_tar(Path(sys.argv[1]), [('long', audio, {'label': 'tone'})])"
    )
    shard = work / "long-data" / "LongClip" / "train" / "long_000000.tar"
    extract = [*CLI, "extract", "mel", "--tasks", "longclip", "--config-dir", work / "long-config", "--split", "train"]
    extract += ["--data", work / "long-data", "--cache", work / "long-cache", "--device", "cpu"]
    decoded_mb = seconds * 16000 * 4 / 2**20
    return [
        ("long_clip_shard", [sys.executable, "-c", code, shard, seconds], {"seconds": seconds}),
        ("long_clip_extract", extract, {"seconds": seconds, "decoded_float32_mb": round(decoded_mb)}),
    ]


def reference_pairs(run: Path) -> int:
    """(clip, reference) pairs in a run's predictions files."""
    return sum(
        len(json.loads(line)["references"])
        for path in (run / "predictions").glob("*.jsonl")
        for line in path.read_text().splitlines()
    )


def median_tokens_per_s(log: Path) -> float:
    values = sorted(json.loads(line)["tokens_per_s"] for line in log.read_text().splitlines())
    return values[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--runs", type=Path, required=True, help="the quick rehearsal's runs/ (a1 a2 b1 b2)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--probe", action="store_true", help="also `xares probe` on the Track A store")
    parser.add_argument("--long-clip-hours", type=float, default=0.0, help="also extract one clip this long")
    parser.add_argument("--only", nargs="*", help="run only these stages, replacing them in an existing --out")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "full_counts.json")
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
