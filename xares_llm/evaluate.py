"""Stage two, evaluation: greedy decoding on every test clip, written as predictions JSONL.

Predictions are written before any metric runs, so `xares score` can rescore them in seconds
without a model. Clips are decoded longest first in batches (less padding), written in store order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from xares_llm.cache import FeatureSplit
from xares_llm.devices import resolve_device
from xares_llm.errors import StoreError, XaresError
from xares_llm.model import Batch
from xares_llm.predictions import predictions_path, write_predictions
from xares_llm.runs import TOKENIZER_DIR, WEIGHTS_FILE, checkpoints, read_recipe, require_run
from xares_llm.sampler import extract_hint, pad_frames
from xares_llm.tasks import TaskConfig, load_task, targets
from xares_llm.tokenizer import load_tokenizer
from xares_llm.train import build_model, load_trainable


class EvalProgress(Protocol):
    def start_task(self, task: str, total_clips: int) -> None: ...
    def advance(self, clips: int) -> None: ...


@dataclass
class TestClip:
    index: int  # clip index in the store
    key: str
    references: list[str]
    n_frames: int


def test_clips(task: TaskConfig, store: FeatureSplit) -> list[TestClip]:
    """Every test clip with at least one reference (SPEC 3 label keys of the test split)."""
    keys = task.labels.keys("test")
    clips = []
    for index in range(len(store)):
        references = targets(store.meta(index), keys)
        if references:
            clips.append(TestClip(index, store.key(index), references, int(store.frame_counts[index])))
    return clips


def evaluate(
    run_dir: Path,
    cache_root: Path,
    tasks: list[str] | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    allow_unfinished: bool = False,
    redo: bool = False,
    progress: EvalProgress | None = None,
) -> list[Path]:
    """Decode every test clip of `tasks` (default: the run's evaluated tasks); returns the JSONL paths."""
    run_dir = Path(run_dir)
    info = require_run(run_dir)
    if not info.finished and not allow_unfinished:
        raise XaresError(
            f"{run_dir} is unfinished ({info.steps_done} of {info.steps} steps); rerun `xares train` to finish it, "
            "or pass --allow-unfinished to evaluate its last checkpoint"
        )
    saved = checkpoints(run_dir)
    if not saved:
        raise XaresError(f"{run_dir} has no checkpoint to evaluate yet")
    recipe = read_recipe(run_dir)
    task_configs = [load_task(name) for name in (tasks or info.eval_tasks)]
    todo = [t for t in task_configs if redo or not predictions_path(run_dir, t.name).is_file()]
    if not todo:
        return [predictions_path(run_dir, t.name) for t in task_configs]
    stores = {}
    for task in todo:
        store = FeatureSplit(cache_root, info.encoder_id, task.dataset.name, "test")
        if len(store.parts) < len(task.dataset.shards("test")):
            hint = extract_hint(info.encoder_spec, [task.name], "test")
            raise StoreError(f"test features of {task.name} are missing in {store.directory}; create them with: {hint}")
        stores[task.name] = store

    dev = resolve_device(device)
    tokenizer = load_tokenizer(str(run_dir / TOKENIZER_DIR))
    model = build_model(recipe, info.input_dim, tokenizer)
    load_trainable(model, saved[-1][1] / WEIGHTS_FILE)
    model.to(dev).eval()
    size = batch_size or recipe.eval_batch_size
    for task in todo:
        store = stores[task.name]
        clips = test_clips(task, store)
        if progress:
            progress.start_task(task.name, len(clips))
        prompt = tokenizer(task.prompt, add_special_tokens=False)["input_ids"]
        outputs: dict[int, str] = {}
        order = sorted(range(len(clips)), key=lambda i: -clips[i].n_frames)
        for start in range(0, len(order), size):
            chosen = [clips[i] for i in order[start : start + size]]
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
        rows = [
            {"task": task.name, "key": c.key, "prediction": outputs[c.index], "references": c.references} for c in clips
        ]
        write_predictions(predictions_path(run_dir, task.name), rows)
    return [predictions_path(run_dir, t.name) for t in task_configs]
