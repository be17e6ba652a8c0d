"""Stage two, training: projector + LLM on a task mixture, reading cached features only.

Setup (stores, model, optimiser) -> resume from the last checkpoint if the run dir has one ->
one loop: lr schedule, forward under autocast, backward, clip, step, log, checkpoint.
Checkpoints hold the trainable weights (safetensors) and optimiser, scheduler, scaler and RNG
state; the sampler is a pure function of the step, so a resumed run continues the same trajectory.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch.nn.parallel import DistributedDataParallel

from xares_llm.cache import read_encoder_info
from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cache.root import is_url
from xares_llm.devices import autocast_dtype, resolve_device
from xares_llm.distributed import (
    World,
    barrier,
    current_world,
    init_process_group,
    mean_across_ranks,
    sum_across_ranks,
)
from xares_llm.errors import XaresError
from xares_llm.lalm.checkpoints import build_model, load_state, load_trainable, save_checkpoint
from xares_llm.lalm.model import Batch, TrainLoss
from xares_llm.lalm.recipe import Recipe
from xares_llm.lalm.run_lock import holds_run_lock
from xares_llm.lalm.runs import (
    LOG_FILE,
    RECIPE_FILE,
    STATE_FILE,
    TOKENIZER_DIR,
    WEIGHTS_FILE,
    RunInfo,
    checkpoints,
    read_log,
    read_recipe,
    read_run,
    write_run,
)
from xares_llm.lalm.sampler import BatchBuilder, MixtureSampler, TrainBatches, window_frames
from xares_llm.lalm.stop import deferred_stop
from xares_llm.lalm.tokenizer import load_tokenizer
from xares_llm.lalm.train_log import StepRecord, open_train_log
from xares_llm.stores import resolve_store as resolve_store  # re-exported: callers of xares_llm.lalm.train
from xares_llm.tasks.data import open_splits
from xares_llm.tasks.schema import Mixture, mixture_weights
from xares_llm.tasks.snapshots import read_run_tasks, write_run_tasks
from xares_llm.threads import use_threads


class TrainProgress(Protocol):
    def start(self, first_step: int, total_steps: int) -> None: ...
    def step(self, step: int, loss: float, lr: float) -> None: ...


@dataclass
class TrainResult:
    run_dir: Path
    steps_done: int
    resumed_from: int  # 0 for a fresh run
    final_loss: float | None


def lr_lambda(warmup: int, total: int):
    """Linear warm-up from 0 at the first update over `warmup` steps, then linear decay to 0 at `total`
    (the schedule of transformers' Trainer, which the reference trains with)."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: weight decay on matrices, none on biases and norm weights
    (transformers' Trainer rule)."""
    no_decay = set()
    for module in model.modules():
        is_norm = "norm" in type(module).__name__.lower()
        for name, param in module.named_parameters(recurse=False):
            if is_norm or name == "bias" or name.endswith("_bias"):
                no_decay.add(id(param))
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if id(p) not in no_decay], "weight_decay": weight_decay},
        {"params": [p for p in trainable if id(p) in no_decay], "weight_decay": 0.0},
    ]


def identity(batch: Batch) -> Batch:
    return batch


def start_or_resume(
    run_dir: Path, recipe: Recipe, cache_root: Path | str, encoder_id: str, encoder_spec: str, mixture: Mixture
) -> RunInfo:
    """Create the run dir, or check that an existing one was started with the same inputs.

    A new run records its inputs: the resolved recipe, every task config and the mixture (so
    evaluation and scoring never depend on the installed package), the cache and the store.
    """
    existing = read_run(run_dir)
    if existing is not None:
        saved = read_recipe(run_dir)
        if saved != recipe:
            diff = [k for k in Recipe.model_fields if getattr(saved, k) != getattr(recipe, k)]
            raise XaresError(
                f"{run_dir} was started with a different recipe (fields: {', '.join(diff)}); "
                "rerun with the same settings to resume, or choose another --run-dir"
            )
        if (existing.encoder_id, existing.mixture) != (encoder_id, mixture.name):
            raise XaresError(
                f"{run_dir} belongs to encoder {existing.encoder_id} on mixture {existing.mixture}; "
                "choose another --run-dir"
            )
        return existing
    encoder_info = read_encoder_info(cache_root, encoder_id)
    tasks = list(mixture.tasks.values())
    info = RunInfo(
        encoder_id=encoder_id,
        encoder_spec=encoder_spec,
        mixture=mixture.name,
        train_tasks=mixture_weights(mixture),
        eval_tasks=list(mixture.evaluate),
        input_dim=encoder_info.output_dim,
        frame_rate_hz=encoder_info.frame_rate_hz,
        steps=recipe.steps,
        cache_root=cache_root if is_url(cache_root) else str(Path(cache_root).resolve()),
        store_dtype=encoder_info.dtype,
        encoder_precision=encoder_info.encoder_precision,
        encoder_resampler=encoder_info.resampler,
    )
    tokenizer = load_tokenizer(
        recipe.llm.tokenizer or recipe.llm.name, recipe.llm.revision
    )  # may fail: before any file
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RECIPE_FILE, recipe.to_yaml())
    write_run_tasks(run_dir, tasks, mixture)
    tokenizer.save_pretrained(str(run_dir / TOKENIZER_DIR))
    write_run(run_dir, info)
    return info


@holds_run_lock
def train(
    run_dir: Path,
    recipe: Recipe,
    mixture: Mixture,
    encoder_id: str,
    cache_root: Path | str,
    encoder_spec: str | None = None,
    device: str | None = None,
    progress: TrainProgress | None = None,
    threads: int | None = None,
    log_kinds: list[str] | None = None,
) -> TrainResult:
    """Train (or resume) the run in `run_dir` until `recipe.steps`; marks it finished only then.

    Under torchrun each rank takes its share of every batch (see `xares_llm.distributed`).
    """
    run_dir = Path(run_dir)
    world = current_world()
    dev = resolve_device(device)
    if world.size > 1:
        if recipe.batch_size % world.size:
            raise XaresError(f"batch_size {recipe.batch_size} does not split over {world.size} processes")
        if dev.type == "cuda":
            dev = torch.device("cuda", world.local_rank)
            torch.cuda.set_device(dev)
        init_process_group(world, dev)
        progress = progress if world.main else None
    if world.main:
        start_or_resume(run_dir, recipe, cache_root, encoder_id, encoder_spec or encoder_id, mixture)
    barrier(world)
    info = read_run(run_dir)
    if info.finished:
        return TrainResult(run_dir, info.steps_done, info.steps_done, None)
    amp_dtype = autocast_dtype(recipe.precision, dev)

    # setup: stores, tokenizer, model, optimiser, schedule
    tasks = read_run_tasks(run_dir, list(info.train_tasks))
    data = open_splits(cache_root, encoder_id, tasks, "train", encoder_spec)
    tokenizer = load_tokenizer(str(run_dir / TOKENIZER_DIR))
    model = build_model(recipe, info.input_dim, tokenizer).to(dev)
    use_threads(model, threads)
    forward = (
        model if world.size == 1 else DistributedDataParallel(model, device_ids=[dev.index] if dev.index else None)
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameter_groups(model, recipe.optim.weight_decay), lr=recipe.optim.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe.optim.warmup_steps, recipe.steps))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    # resume: weights, optimiser, schedule, scaler and RNG state of the last checkpoint
    first_step = 0
    saved = checkpoints(run_dir)
    if saved:
        first_step, path = saved[-1]
        load_trainable(model, path / WEIGHTS_FILE)
        state = load_state(path / STATE_FILE)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
    if world.main:
        truncate_log(run_dir / LOG_FILE, first_step)
        info.train_targets = {d.task.name: d.counts.to_dict() for d in data}
        info.device, info.precision = dev.type, str(amp_dtype).removeprefix("torch.") if amp_dtype else "fp32"
        info.mark_running()
        write_run(run_dir, info)

    sampler = MixtureSampler(
        data,
        [info.train_tasks[t.name] for t in tasks],
        window_frames(recipe.window_seconds, info.frame_rate_hz),
        recipe.batch_size,
        recipe.seed,
    )
    batches = torch.utils.data.DataLoader(
        TrainBatches(sampler, BatchBuilder(data, tokenizer), first_step, recipe.steps, world.rank, world.size),
        batch_size=None,
        collate_fn=identity,
        num_workers=recipe.num_workers,
        persistent_workers=False,
        # its own generator: drawing worker seeds from the global RNG would shift dropout after a resume
        generator=torch.Generator().manual_seed(recipe.seed),
    )
    if progress:
        progress.start(first_step, recipe.steps)
    model.train()
    loss_value = None
    task_names = [t.name for t in tasks]
    step_start = time.perf_counter()
    log_context = open_train_log(run_dir, log_kinds or [], first_step) if world.main else contextlib.nullcontext()
    # one process: Ctrl-C or SIGTERM ends the step and checkpoints it (ranks would disagree on the step)
    with recording_stop(run_dir, info, world), deferred_stop(world.size == 1) as stop, log_context as log:
        for step, batch in enumerate(batches, start=first_step + 1):
            # forward and backward, under autocast on CUDA
            with torch.autocast(dev.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
                result = forward(batch.to(dev))
            loss = result.loss
            scaler.scale(loss).backward()
            # clip, step, schedule; a non-finite gradient outside fp16 (where the scaler skips it) stops the run
            scaler.unscale_(optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, recipe.optim.grad_clip))
            loss_value = mean_across_ranks(loss.detach(), world)
            task_loss, tokens = task_losses(result, batch.tasks, task_names, world)
            check_finite(step, loss_value, grad_norm if not scaler.is_enabled() else 0.0, batch)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            # log and checkpoint
            if not world.main:
                continue
            now = time.perf_counter()
            log.write(StepRecord(step, loss_value, lr, grad_norm, tokens / (now - step_start), task_loss))
            step_start = now
            if step % recipe.log_every == 0:
                log.flush()
            if progress:
                progress.step(step, loss_value, lr)
            if step % recipe.checkpoint_every == 0 or step == recipe.steps or stop.requested:
                log.flush()
                state = {
                    "step": step,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if dev.type == "cuda" else None,
                }
                save_checkpoint(run_dir, step, model, state, recipe.keep_checkpoints)
                info.steps_done = step
                write_run(run_dir, info)
            if stop.requested and step < recipe.steps:
                raise KeyboardInterrupt(f"{stop.signal} at step {step}; checkpointed")
    if world.main:
        info.status = "finished"
        info.steps_done = recipe.steps
        write_run(run_dir, info)
    barrier(world)
    return TrainResult(run_dir, recipe.steps, first_step, loss_value)


@contextlib.contextmanager
def recording_stop(run_dir: Path, info: RunInfo, world: World):
    """Record `interrupted` or `failed` in run.json when training ends by an exception or a signal."""
    try:
        yield
    except BaseException as error:
        if world.main:
            info.mark_stopped(error)
            write_run(run_dir, info)
        raise


def task_losses(result: TrainLoss, row_tasks: list[str], names: list[str], world: World) -> tuple[dict, int]:
    """Each task's mean answer-token loss in this step's batch (over all ranks) and the batch's tokens."""
    index = {name: i for i, name in enumerate(names)}
    device = result.row_loss.device
    totals = torch.zeros(2 * len(names) + 1, dtype=torch.float64, device=device)
    rows = torch.tensor([index[t] for t in row_tasks], device=device)
    totals.index_add_(0, rows, result.row_loss.double())
    totals.index_add_(0, rows + len(names), result.row_tokens.double())
    totals[-1] = result.tokens
    totals = sum_across_ranks(totals, world).cpu()
    losses = {n: float(totals[i] / totals[len(names) + i]) for i, n in enumerate(names) if totals[len(names) + i] > 0}
    return losses, int(totals[-1])


def check_finite(step: int, loss: float, grad_norm: float, batch: Batch) -> None:
    """Stop at the first non-finite loss or gradient, naming the step and the batch's tasks."""
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {grad_norm}"
    tasks = ", ".join(sorted(set(batch.tasks or []))) or "unknown"
    raise XaresError(
        f"training stopped at step {step}: {what} (tasks in the batch: {tasks}); the run resumes from its "
        "last checkpoint: check the features with `xares cache verify` or lower optim.lr, then rerun"
    )


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the log lines up to the checkpoint we resume from (later ones are recomputed); a line cut
    short by a kill is dropped."""
    if not path.is_file():
        return
    kept = [json.dumps(entry) for entry in read_log(path) if entry["step"] <= last_step]
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
