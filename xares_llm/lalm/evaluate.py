"""Stage two, evaluation: greedy decoding on every test clip, written as predictions JSONL.

Predictions are written before any metric runs, so `xares score` can rescore them in seconds
without a model. Clips are decoded longest first in batches (less padding), written in store order;
under torchrun the ranks share the batches and rank 0 writes the files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cache.root import cache_root_of
from xares_llm.devices import resolve_device
from xares_llm.distributed import World, barrier, current_world, init_process_group
from xares_llm.errors import XaresError
from xares_llm.lalm.checkpoints import build_model, load_trainable
from xares_llm.lalm.model import Batch
from xares_llm.lalm.run_lock import refuse_if_training
from xares_llm.lalm.runs import LOG_FILE, TOKENIZER_DIR, WEIGHTS_FILE, checkpoints, read_log, read_recipe, require_run
from xares_llm.lalm.sampler import pad_frames
from xares_llm.lalm.tokenizer import load_tokenizer
from xares_llm.scoring.predictions import PREDICTIONS_DIR, predictions_path, write_counts, write_predictions
from xares_llm.tasks.data import TaskSplit, open_splits
from xares_llm.tasks.snapshots import read_run_tasks
from xares_llm.threads import use_threads


class EvalProgress(Protocol):
    def start_task(self, task: str, total_clips: int) -> None: ...
    def advance(self, clips: int) -> None: ...


@dataclass
class TestClip:
    index: int  # clip index in the store
    key: str
    references: list[str]
    n_frames: int


def test_clips(split: TaskSplit) -> list[TestClip]:
    """Every test clip with at least one target (after the task's filter), in store order."""
    store = split.store
    return [
        TestClip(index, store.key(index), refs, int(store.frame_counts[index]))
        for index, refs in split.references().items()
    ]


def last_loss(run_dir: Path) -> float | None:
    path = Path(run_dir) / LOG_FILE
    entries = read_log(path) if path.is_file() else []
    return entries[-1]["loss"] if entries else None


def evaluate(
    run_dir: Path,
    cache_root: Path | str | None = None,
    tasks: list[str] | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    allow_unfinished: bool = False,
    redo: bool = False,
    progress: EvalProgress | None = None,
    threads: int | None = None,
) -> list[Path]:
    """Decode every test clip of `tasks` (default: the run's evaluated tasks); returns the JSONL paths.

    `cache_root` defaults to the cache the run trained from.
    """
    run_dir = Path(run_dir)
    info = require_run(run_dir)
    refuse_if_training(run_dir)
    if not info.finished and not allow_unfinished:
        raise XaresError(
            f"{run_dir} is unfinished ({info.steps_done} of {info.steps} steps); rerun `xares train` to finish it, "
            "or pass --allow-unfinished to evaluate its last checkpoint"
        )
    loss = last_loss(run_dir)
    if loss is not None and not math.isfinite(loss):
        raise XaresError(f"{run_dir}: the last training loss is {loss}; a diverged model is not evaluated")
    saved = checkpoints(run_dir)
    if not saved:
        raise XaresError(f"{run_dir} has no checkpoint to evaluate yet")
    if cache_root is None:
        if info.cache_root is None:
            raise XaresError(f"{run_dir} does not record its feature cache; pass --cache")
        cache_root = cache_root_of(info.cache_root)
    recipe = read_recipe(run_dir)
    names = tasks or info.eval_tasks
    todo = [t for t in read_run_tasks(run_dir, names) if redo or not predictions_path(run_dir, t.name).is_file()]
    if not todo:
        return [predictions_path(run_dir, name) for name in names]
    splits = open_splits(cache_root, info.encoder_id, todo, "test", info.encoder_spec)

    world = current_world()
    dev = rank_device(resolve_device(device), world)
    init_process_group(world, dev)
    progress = progress if world.main else None
    tokenizer = load_tokenizer(str(run_dir / TOKENIZER_DIR))
    model = build_model(recipe, info.input_dim, tokenizer)
    load_trainable(model, saved[-1][1] / WEIGHTS_FILE)
    model.to(dev).eval()
    use_threads(model, threads)
    size = batch_size or recipe.eval_batch_size
    for split in splits:
        task, store = split.task, split.store
        clips = test_clips(split)
        if progress:
            progress.start_task(task.name, len(clips))
        prompt = tokenizer(task.prompt, add_special_tokens=False)["input_ids"]
        outputs: dict[int, str] = {}
        for chosen in decoding_batches(clips, size)[world.rank :: world.size]:
            frames = [np.asarray(store.frames(c.index)) for c in chosen]
            batch = Batch(
                features=pad_frames(frames),
                frame_lengths=torch.tensor([len(f) for f in frames], dtype=torch.long),
                prompt_ids=[prompt] * len(chosen),
            )
            with torch.inference_mode():
                generated = model.generate(batch.to(dev), recipe.decoding)
            for clip, ids in zip(chosen, generated, strict=True):
                outputs[clip.index] = tokenizer.decode(ids, skip_special_tokens=True).strip()
            if progress:
                progress.advance(len(chosen))
        outputs = merge_ranks(run_dir, task.name, outputs, world)
        if world.main:
            rows = [{"task": task.name, "key": c.key, "prediction": outputs[c.index], "references": c.references}
                    for c in clips]  # fmt: skip
            # a clip extraction dropped counts as a wrong answer, so dropping clips never raises a score
            rows += [{"task": task.name, "key": d.key, "prediction": "", "references": d.targets, "dropped": d.reason}
                     for d in split.dropped]  # fmt: skip
            write_predictions(predictions_path(run_dir, task.name), rows)
            write_counts(run_dir, task.name, split.counts.to_dict())
    barrier(world)
    return [predictions_path(run_dir, name) for name in names]


def decoding_batches(clips: list[TestClip], size: int) -> list[list[TestClip]]:
    """Clips longest first, in batches of `size` (less padding). Under torchrun rank r decodes batches
    r, r + n, ...: whole batches, so every clip sees exactly the batch it would see in one process,
    and ranks get similar lengths."""
    order = sorted(clips, key=lambda c: -c.n_frames)
    return [order[start : start + size] for start in range(0, len(order), size)]


def rank_device(device: torch.device, world: World) -> torch.device:
    return torch.device("cuda", world.local_rank) if device.type == "cuda" and world.size > 1 else device


def merge_ranks(run_dir: Path, task: str, outputs: dict[int, str], world: World) -> dict[int, str]:
    """Every rank's predictions, gathered on rank 0 through files beside the predictions (no pickling)."""
    if world.size == 1:
        return outputs
    part = Path(run_dir) / PREDICTIONS_DIR / f".{task}.rank{world.rank}.json"
    part.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(part, json.dumps(outputs, ensure_ascii=False))
    barrier(world)
    merged: dict[int, str] = {}
    if world.main:
        for rank in range(world.size):
            path = part.with_name(f".{task}.rank{rank}.json")
            merged |= {int(index): text for index, text in json.loads(path.read_text()).items()}
    barrier(world)
    part.unlink()
    return merged
