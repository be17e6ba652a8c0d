"""Every CUDA path once, timed, in one command (<= 8 minutes on one GPU); JSON out.

    python -m benchmarks.gpu_check                        # CUDA, full sizes
    python -m benchmarks.gpu_check --device cpu --quick   # the same paths on CPU, small (tested)

Sections, each through the real code:
1. extraction (`xares extract`) of a Whisper-base-sized random encoder in fp32, fp16 and bf16:
   audio hours per second and peak memory, from the store's extract-profile.json;
2. `xares bench` and `xares check` on the device;
3. training steps of a SmolLM2-135M-sized LLM (random init from its config, byte tokenizer) under
   the `reference` recipe (fp32) and `t4` (fp16 autocast + GradScaler), once from the cached store
   and once with the encoder run online inside the step (benchmarks/train_step.py); their ratio is
   the per-step gain of the cache on this device;
4. `xares train` + `xares eval` with each recipe: steps/s and batched decoding (tokens/s, clips/s);
5. `torchrun --nproc_per_node 1` train and eval (NCCL on CUDA, gloo on CPU);
6. the N-experiments cost ratio (reference design / ours, N = 1, 3, 10) from the numbers above.

On CPU, fp16 autocast does not apply (xares_llm/devices.py `autocast_dtype`), so the fp16/bf16 rows
measure the fp32 path there; the structure is what `--device cpu --quick` checks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import webdataset as wds
import yaml

from benchmarks.common import SMOLLM2_135M, load_average, save_random_whisper, write_clips_shards, write_result
from benchmarks.extract_overhead import bench_task
from benchmarks.train_step import bench_encoder
from xares_llm.tasks.schema import TaskConfig

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "xares_llm.cli.main"]
PRECISIONS = ("fp32", "fp16", "bf16")
BENCHMARK_AUDIO_HOURS = 1883  # train + test of every official task (benchmarks/replica.py SHAPES)
REFERENCE_STEPS = 200_000  # 100 000 steps of batch 4 per track, two tracks
# (clips per shard, shards, clip seconds, timed train steps, CLI train steps, LLM layers, vocabulary)
SIZES = {
    "full": {"clips": 64, "shards": 4, "seconds": (8.0, 12.0), "steps": 10, "train_steps": 60, "layers": 30},
    "quick": {"clips": 4, "shards": 2, "seconds": (2.0, 4.0), "steps": 5, "train_steps": 4, "layers": 2},
}


def run(command: list, env: dict, timeout: float = 600) -> tuple[float, str]:
    """(wall seconds, output) of one CLI process; a failure raises with its last lines."""
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"{' '.join(str(c) for c in command[2:])} failed ({done.returncode}):\n{tail}")
    return wall, done.stdout


def write_configs(work: Path, size: dict, vocabulary: int | None) -> Path:
    """A task, a mixture and the two recipes with a SmolLM2-135M-sized random LLM, in one config dir."""
    shards = [f"GpuCheck/train/part_{i:04d}.tar" for i in range(size["shards"])]
    task = {
        "name": "gpucheck",
        "track": "user",
        "dataset": {"name": "gpucheck", "train": shards, "test": shards[:1]},
        "labels": {"train": "label", "test": "label"},
        "prompt": "Which class is it?",
        "metric": {"name": "accuracy"},
    }
    TaskConfig.model_validate(task)
    config = work / "configs"
    for kind, name, data in (
        ("tasks", "gpucheck", task),
        ("mixtures", "gpucheck", {"name": "gpucheck", "weights": {"gpucheck": 1}, "evaluate": ["gpucheck"]}),
    ):
        (config / kind).mkdir(parents=True, exist_ok=True)
        (config / kind / f"{name}.yaml").write_text(yaml.safe_dump(data))
    (config / "recipes").mkdir(exist_ok=True)
    for recipe in ("reference", "t4"):
        data = yaml.safe_load((ROOT / "configs" / "recipes" / f"{recipe}.yaml").read_text())
        data["llm"] = {"config": llm_config(size, vocabulary), "tokenizer": "byte"}
        data |= {"name": f"{recipe}-135m", "checkpoint_every": 10_000, "num_workers": 0, "log_every": 1}
        data["decoding"] = {**data["decoding"], "max_new_tokens": 16}
        (config / "recipes" / f"{recipe}.yaml").write_text(yaml.safe_dump(data))
    return config


def llm_config(size: dict, vocabulary: int | None) -> dict:
    return {**SMOLLM2_135M, "num_hidden_layers": size["layers"]} | ({"vocab_size": vocabulary} if vocabulary else {})


def extraction(work: Path, encoder: Path, device: str, env: dict, config: Path) -> dict:
    """`xares extract` in each precision into its own cache; speed and peak memory from the profile."""
    rows = {}
    for precision in PRECISIONS:
        cache = work / f"cache-{precision}"
        command = [*CLI, "extract", "whisper-base", "--encoder-args", json.dumps({"model": str(encoder)})]
        command += ["--tasks", "gpucheck", "--config-dir", config, "--data", work / "data", "--cache", cache]
        command += ["--device", device, "--encoder-precision", precision, "--split", "train,test"]
        wall, _ = run(command, env)
        (store,) = (cache / "features").iterdir()
        profile = json.loads((store / "extract-profile.json").read_text())[-1]
        keep = ("audio_hours", "audio_hours_per_s", "x_realtime", "clips_per_s", "peak_memory_mb", "memory")
        rows[precision] = {"process_wall_s": round(wall, 2), "encoder_id": store.name} | {
            k: profile.get(k) for k in (*keep, "device_name", "precision", "seconds")
        }
    return rows


def device_rows(encoder: Path, device: str, env: dict, work: Path, quick: bool) -> dict:
    """`xares check` and `xares bench` on the device, as a user runs them."""
    args = ["--encoder-args", json.dumps({"model": str(encoder)}), "--device", device]
    wall, out = run([*CLI, "check", "whisper-base", *args], env)
    bench = {}
    for precision in PRECISIONS:
        path = work / f"bench-{precision}.json"
        quick_sizes = ["--durations", "1", "--batch-sizes", "1,2", "--repeats", "1"]
        sizes = quick_sizes if quick else ["--durations", "10,30", "--batch-sizes", "1,16", "--repeats", "3"]
        run([*CLI, "bench", "whisper-base", *args, "--precision", precision, *sizes, "--json", path], env)
        bench[precision] = json.loads(path.read_text())
    return {"check": {"wall_s": round(wall, 2), "output": out[-3000:]}, "bench": bench}


def step_ratios(work: Path, encoder: Path, device: torch.device, size: dict, vocabulary: int | None) -> dict:
    """Cached vs online training steps under each recipe (train_step.py's three interleaved modes)."""
    task = bench_task(2)
    write_clips_shards(work / "data", task.dataset.shards("train"), 8, size["seconds"])
    audio = {
        sample["__key__"]: sample["flac"]
        for shard in task.dataset.shards("train")
        for sample in wds.WebDataset(str(work / "data" / shard), shardshuffle=False)
    }
    kwargs, llm = {"model": str(encoder)}, llm_config(size, vocabulary)
    return {
        recipe: bench_encoder(
            encoder.name, "whisper-base", kwargs, size["steps"], work, task, audio, llm, device, recipe
        )
        for recipe in ("reference", "t4")
    }


def cli_train_eval(work: Path, config: Path, encoder_id: str, cache: Path, device: str, env: dict, size: dict) -> dict:
    """`xares train` + `xares eval` per recipe, then both again under `torchrun --nproc_per_node 1`."""
    rows = {}
    launchers = {"python": CLI, "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1"]}
    for launcher, prefix in launchers.items():
        prefix = prefix if launcher == "python" else [*prefix, "-m", "xares_llm.cli.main"]
        for recipe in ("reference", "t4") if launcher == "python" else ("t4",):
            run_dir = work / "runs" / f"{launcher}-{recipe}"
            train = [
                *prefix,
                "train",
                encoder_id,
                "--mixture",
                "gpucheck",
                "--recipe",
                config / "recipes" / f"{recipe}.yaml",
            ]
            train += ["--steps", size["train_steps"], "--run-dir", run_dir, "--cache", cache, "--device", device]
            train_wall, _ = run([*train, "--config-dir", config], env)
            steps = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
            eval_wall, _ = run([*prefix, "eval", run_dir, "--device", device, "--redo"], env)
            predictions = [
                json.loads(line)
                for p in (run_dir / "predictions").glob("*.jsonl")
                for line in p.read_text().splitlines()
            ]
            tokens = sum(
                len(p["prediction"].encode()) + 1 for p in predictions
            )  # byte tokenizer: a token a byte, + EOS
            rows[f"{launcher}-{recipe}"] = {
                "train_process_s": round(train_wall, 2),
                "median_tokens_per_s": sorted(s["tokens_per_s"] for s in steps)[len(steps) // 2],
                "steps": len(steps),
                "eval_process_s": round(eval_wall, 2),
                "eval_clips": len(predictions),
                "eval_clips_per_s": round(len(predictions) / eval_wall, 3),
                "eval_tokens_per_s": round(tokens / eval_wall, 3),
            }
    return rows


def cost_ratios(extract_rows: dict, steps: dict) -> dict:
    """Reference design / ours for N experiments of REFERENCE_STEPS steps over the whole benchmark.

    The reference runs the encoder inside every step (the online step) in every experiment; ours
    extracts once (the fp32 extraction speed measured above, over the benchmark's audio hours) and
    then takes cached steps. Same step count either way.
    """
    extract_s = BENCHMARK_AUDIO_HOURS / extract_rows["fp32"]["audio_hours_per_s"]
    out = {}
    for recipe, row in steps.items():
        online, cached = row["wall_s"]["online"]["median"], row["wall_s"]["cached"]["median"]
        out[recipe] = {
            "extract_once_s": round(extract_s, 1),
            "online_step_s": online,
            "cached_step_s": cached,
            **{
                f"N={n}": round(n * REFERENCE_STEPS * online / (extract_s + n * REFERENCE_STEPS * cached), 3)
                for n in (1, 3, 10)
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="small shards, a 2-layer LLM, a few steps")
    parser.add_argument("--encoder-size", default="whisper-base", choices=["whisper-tiny", "whisper-base"])
    parser.add_argument("--work", type=Path, help="working folder (kept) [default: a temporary one]")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    vocabulary = 512 if args.quick else None  # quick: the byte tokenizer needs few ids; keeps the LM head small
    device = torch.device(args.device)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    work = args.work or Path(tempfile.mkdtemp(prefix="xares-gpu-check-"))
    start, load = time.perf_counter(), load_average()
    try:
        config = write_configs(work, size, vocabulary)
        shards = [f"GpuCheck/train/part_{i:04d}.tar" for i in range(size["shards"])]
        write_clips_shards(work / "data", shards, size["clips"], size["seconds"])
        encoder = save_random_whisper(args.encoder_size, work / f"{args.encoder_size}-sized")
        result: dict = {"device": args.device, "device_name": device_name(device), "quick": args.quick}
        result["encoder"] = f"{args.encoder_size}-sized, random init"
        result["extraction"] = extraction(work, encoder, args.device, env, config)
        result |= device_rows(encoder, args.device, env, work, args.quick)
        result["train_steps"] = step_ratios(work, encoder, device, size, vocabulary)
        fp32 = result["extraction"]["fp32"]["encoder_id"]
        result["train_eval"] = cli_train_eval(work, config, fp32, work / "cache-fp32", args.device, env, size)
        result["cost_ratio"] = cost_ratios(result["extraction"], result["train_steps"])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result |= {"total_wall_s": round(time.perf_counter() - start, 1), "load_average_at_start": load}
    write_result(args.out, result)
    print(json.dumps(result["cost_ratio"], indent=1))


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    main()
