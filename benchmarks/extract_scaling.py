"""Peak memory of `xares extract` as shards grow, and of the train loader over a 15-task mixture.

Extraction: one shard per run, in three sizes: 1x (base clips per shard), 8x the clips per shard,
and 8x longer clips (8x the audio either way). Each run is a fresh process (`extract` with `mel`
into a fresh store), so its peak RSS (`ru_maxrss` from `wait4`, the child alone) is not inherited
from earlier runs (the profile's own measurement resets the kernel's high-water mark as the
extraction loop starts, so it is the peak while extracting, model loading excluded). The store's
own profile (extract-profile.json) gives x real time and per-stage seconds beside it. Goal: the
three peaks within 10 % of each other (a shard streams in bounded windows; before, a shard was
decoded whole: about 1.35 GB per audio hour). The quick size scales the shards and the decode
window (60 s instead of 600 s) down by 10, so it crosses as many windows.

Train loader: 15 small synthetic tasks (task YAMLs in a temp --config-dir) extracted once, then,
per run, a fresh process builds the training DataLoader as `xares train` does (the reference
recipe's batch and 30 s windows, 2 workers) and draws a few steps' batches, without the LLM; the
peak over the process tree of summed PSS (shared pages counted once) and of summed RSS, sampled
every 100 ms.

Modes are interleaved round by round, 5+ rounds after a warm-up; median and IQR of peak memory,
wall and CPU time; load average recorded; a profile peak above the process's lifetime peak (which
contains it) is flagged as a measurement error.

    python -m benchmarks.extract_scaling [--quick] [--repeats 5] [--out ...json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from benchmarks.common import load_average, summary, write_clips_shards, write_result

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 0.1  # process-tree memory sampling period (reading smaps_rollup costs CPU: not faster)


def task_config(name: str, shards: list[str]) -> dict:
    return {
        "name": name,
        "track": "A",
        "dataset": {"name": name, "repo": None, "train": shards, "test": shards[:1]},
        "labels": {"train": "label", "test": "label"},
        "prompt": "Name the class.",
        "metric": {"name": "accuracy"},
    }


def child_extract(spec: dict) -> None:
    """Run in the child process: one extraction, as `xares extract` runs it."""
    from xares_llm.extract.run import extract
    from xares_llm.tasks.schema import TaskConfig

    task = TaskConfig.model_validate(spec["task"])
    extract("mel", [task], Path(spec["cache"]), Path(spec["data"]), splits=["train"], window_seconds=spec["window"])


def run_child(command: list[str], tree: bool = False) -> dict:
    """Wall, CPU (user + system) and peak RSS of one child process; with `tree`, also its process
    tree's peak summed PSS and RSS (sampled)."""
    started = time.perf_counter()
    peaks = {"pss": 0.0, "rss": 0.0}
    done = threading.Event()
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty child never blocks on a full pipe
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        sampler = threading.Thread(target=sample_tree, args=(process.pid, peaks, done), daemon=True)
        if tree:
            sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        if tree:
            sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        error = log.read().decode(errors="replace")
    if process.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({process.returncode}): {error[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        **({"tree_peak_pss_mb": peaks["pss"], "tree_peak_rss_mb": peaks["rss"]} if tree else {}),
    }


def tree_pids(pid: int) -> list[int]:
    pids, index = [pid], 0
    while index < len(pids):
        try:
            children = Path(f"/proc/{pids[index]}/task/{pids[index]}/children").read_text().split()
        except OSError:
            children = []
        pids += [int(c) for c in children]
        index += 1
    return pids


def tree_memory(pid: int) -> tuple[float, float]:
    """(summed PSS, summed RSS) in MB of `pid` and its descendants."""
    pss = rss = 0.0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += float(line.split()[1]) / 1024
                elif line.startswith("Rss:"):
                    rss += float(line.split()[1]) / 1024
        except OSError:
            continue  # exited between the listing and the read
    return pss, rss


def sample_tree(pid: int, peaks: dict, done: threading.Event) -> None:
    while not done.is_set():
        pss, rss = tree_memory(pid)
        peaks["pss"], peaks["rss"] = max(peaks["pss"], pss), max(peaks["rss"], rss)
        done.wait(SAMPLE_S)


def extraction_modes(tmp: Path, base_clips: int, base_seconds: float, window: float) -> dict[str, dict]:
    """Shards of the three sizes, and the child spec that extracts each."""
    sizes = {"1x": (base_clips, base_seconds), "8x clips": (8 * base_clips, base_seconds)}
    sizes["8x longer clips"] = (base_clips, 8 * base_seconds)
    modes = {}
    for i, (mode, (clips, seconds)) in enumerate(sizes.items()):
        shard = f"scale/train/scale_{i}.tar"
        write_clips_shards(tmp / "data", [shard], clips, (0.9 * seconds, 1.1 * seconds))
        spec = {"task": task_config(f"scale{i}", [shard]), "data": str(tmp / "data"), "window": window}
        modes[mode] = {"spec": spec, "clips": clips, "audio_s": clips * seconds}
    return modes


def measure_extraction(tmp: Path, modes: dict[str, dict], repeats: int) -> dict:
    results: dict[str, list[dict]] = {m: [] for m in modes}
    names = list(modes)
    for round_ in range(1 + repeats):  # round 0 is the warm-up (page cache, bytecode)
        shift = round_ % len(names)
        for mode in names[shift:] + names[:shift]:
            cache = tmp / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            spec = {**modes[mode]["spec"], "cache": str(cache)}
            run = run_child([sys.executable, "-m", "benchmarks.extract_scaling", "--child", json.dumps(spec)])
            [profile] = json.loads(next(cache.glob("features/*/extract-profile.json")).read_text())
            run |= {k: profile[k] for k in ("x_realtime", "peak_memory_mb", "audio_hours")}
            run["stage_seconds"] = profile["seconds"]
            if round_:
                results[mode].append(run)
    out = {}
    for mode, runs in results.items():
        out[mode] = {
            "clips": modes[mode]["clips"],
            "audio_s": round(modes[mode]["audio_s"], 1),
            **{key: summary([r[key] for r in runs]) for key in ("peak_rss_mb", "peak_memory_mb", "wall_s", "cpu_s")},
            "x_realtime": summary([r["x_realtime"] for r in runs]),
            "stage_seconds_last": runs[-1]["stage_seconds"],
        }
    for mode, runs in results.items():
        if any(r["peak_memory_mb"] > 1.01 * r["peak_rss_mb"] for r in runs):
            out[mode]["measurement_error"] = "the profile's peak exceeds the process's lifetime peak RSS"
    base = out["1x"]["peak_rss_mb"]["median"]
    for mode in out:
        growth = out[mode]["peak_rss_mb"]["median"] / base
        out[mode]["peak_rss_vs_1x"] = round(growth, 4)
    worst = max(abs(out[m]["peak_rss_vs_1x"] - 1) for m in out)
    return {"modes": out, "worst_peak_rss_difference": round(worst, 4), "goal_met": worst <= 0.10}


def child_loader(spec: dict) -> None:
    """Run in the child process: the training DataLoader exactly as `xares_llm.lalm.train.train` builds it
    (stores, mixture sampler, batch builder, `num_workers` workers), drawn for `steps` steps."""
    import torch

    from xares_llm.config import add_config_dirs
    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.lalm.sampler import BatchBuilder, MixtureSampler, TrainBatches, window_frames
    from xares_llm.lalm.tokenizer import byte_tokenizer
    from xares_llm.lalm.train import identity
    from xares_llm.tasks.data import open_splits
    from xares_llm.tasks.schema import load_mixture, mixture_weights

    add_config_dirs([Path(spec["config"])])
    mixture, recipe = load_mixture(spec["mixture"]), load_recipe(spec["recipe"])
    tasks, weights = list(mixture.tasks.values()), mixture_weights(mixture)
    data = open_splits(Path(spec["cache"]), spec["encoder_id"], tasks, "train")
    sampler = MixtureSampler(
        data,
        [weights[t.name] for t in tasks],
        window_frames(recipe.window_seconds, spec["frame_rate_hz"]),
        recipe.batch_size,
        recipe.seed,
    )
    batches = torch.utils.data.DataLoader(
        TrainBatches(sampler, BatchBuilder(data, byte_tokenizer()), 0, spec["steps"]),
        batch_size=None,
        collate_fn=identity,
        num_workers=spec["workers"],
        persistent_workers=False,
        generator=torch.Generator().manual_seed(recipe.seed),
    )
    drawn = sum(1 for _ in batches)
    assert drawn == spec["steps"], f"{drawn} batches for {spec['steps']} steps"


def measure_train_loader(tmp: Path, n_tasks: int, clips: int, steps: int, repeats: int) -> dict:
    """Extract `n_tasks` synthetic tasks once, then draw `steps` training batches with 2 workers, per run."""
    config = tmp / "config"
    for kind in ("tasks", "mixtures"):
        (config / kind).mkdir(parents=True, exist_ok=True)
    names = [f"mix{i:02d}" for i in range(n_tasks)]
    for name in names:
        shard = f"mix/train/{name}.tar"
        write_clips_shards(tmp / "mixdata", [shard], clips, (1.0, 12.0))
        (config / "tasks" / f"{name}.yaml").write_text(yaml.safe_dump(task_config(name, [shard])))
    mixture = {"name": "bench15", "weights": dict.fromkeys(names, 1), "evaluate": names}
    (config / "mixtures" / "bench15.yaml").write_text(yaml.safe_dump(mixture))
    cache = tmp / "mixcache"
    command = [sys.executable, "-m", "xares_llm.cli.main", "extract", "mel", "--tasks", "bench15", "--split", "train"]
    command += ["--cache", str(cache), "--config-dir", str(config), "--data", str(tmp / "mixdata")]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    info = json.loads(next(cache.glob("features/*/encoder.json")).read_text())
    spec = {"config": str(config), "mixture": "bench15", "recipe": "reference", "cache": str(cache), "steps": steps}
    spec |= {"encoder_id": info["encoder_id"], "frame_rate_hz": info["frame_rate_hz"], "workers": 2}
    runs = []
    for round_ in range(1 + repeats):
        run = run_child([sys.executable, "-m", "benchmarks.extract_scaling", "--loader-child", json.dumps(spec)], True)
        if round_:
            runs.append(run)
    return {
        "tasks": n_tasks,
        "clips_per_task": clips,
        "num_workers": 2,
        "steps": steps,
        "recipe": "reference (batch size and 30 s windows of the reference system)",
        **{key: summary([r[key] for r in runs]) for key in ("tree_peak_pss_mb", "tree_peak_rss_mb", "peak_rss_mb")},
        "wall_s": summary([r["wall_s"] for r in runs]),
        "cpu_s": summary([r["cpu_s"] for r in runs]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shards 10x smaller, window 60 s: about 2 minutes")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after one warm-up (at least 5)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract_scaling.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--loader-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child or args.loader_child:
        (child_extract if args.child else child_loader)(json.loads(args.child or args.loader_child))
        return
    if args.repeats < 5:
        parser.error("at least 5 timed repeats")
    # full: 300 clips of 2 s (600 s, one window) per 1x shard; quick: 30 clips (60 s, one 60 s window)
    base_clips, window = (30, 60.0) if args.quick else (300, 600.0)
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        modes = extraction_modes(tmp, base_clips, 2.0, window)
        extraction = measure_extraction(tmp, modes, args.repeats)
        # the loader's numbers are memory, not timings to compare: --quick keeps 2 runs after the warm-up
        loader_runs = 2 if args.quick else args.repeats
        loader = measure_train_loader(tmp, 15, 8 if args.quick else 40, 5 if args.quick else 30, loader_runs)
    write_result(
        args.out,
        {
            "benchmark": "extract_scaling",
            "goal": "extraction peak RSS at 8x clips and at 8x longer clips within 10 % of 1x",
            "quick": args.quick,
            "encoder": "mel",
            "window_seconds": window,
            "repeats": args.repeats,
            "extraction": extraction,
            "train_loader": loader,
            "load_average": {"before": load_before, "after": load_average()},
        },
    )


if __name__ == "__main__":
    main()
