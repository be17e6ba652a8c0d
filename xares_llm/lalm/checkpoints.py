"""Building the stage-two model and reading and writing its checkpoints.

A checkpoint (``<run>/checkpoints/step-NNNNNNN/``) holds the trainable weights as safetensors and
the training state (optimiser, scheduler, scaler, RNG) as a torch file that is only ever loaded
with ``weights_only=True``: a run dir received from someone else cannot run code on resume.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xares_llm.errors import XaresError
from xares_llm.lalm.model import AudioLLM
from xares_llm.lalm.recipe import Recipe
from xares_llm.lalm.runs import STATE_FILE, WEIGHTS_FILE, checkpoint_dir, prune_checkpoints


def build_model(recipe: Recipe, input_dim: int, tokenizer) -> AudioLLM:
    """Seeded construction, so frozen (or random-init) weights are identical across processes."""
    torch.manual_seed(recipe.seed)
    return AudioLLM(recipe, input_dim, tokenizer)


def save_checkpoint(run_dir: Path, step: int, model: AudioLLM, state: dict, keep: int) -> None:
    """Write into a temp dir, then rename: a kill mid-write never leaves a checkpoint that looks complete."""
    final = checkpoint_dir(run_dir, step)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700; a run dir is shared like any other folder
        weights = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE))
        torch.save(state, tmp / STATE_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except (OSError, SafetensorError, RuntimeError) as e:  # a full disk is each of these, by who wrote last
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        why = getattr(e, "strerror", None) or str(e).strip().splitlines()[0]
        raise XaresError(
            f"cannot write checkpoint {final}: {why}; free disk space or fix permissions, "
            "then rerun the same `xares train` command to resume from the last checkpoint"
        ) from e
    prune_checkpoints(run_dir, keep)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_trainable(model: AudioLLM, path: Path) -> None:
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise XaresError(f"cannot read checkpoint weights {path}: {e}") from e
    missing = sorted(set(model.trainable_state_dict()) - set(weights))
    unexpected = model.load_state_dict(weights, strict=False).unexpected_keys
    if missing or unexpected:
        raise XaresError(
            f"checkpoint {path} does not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def load_state(path: Path) -> dict:
    """The training state, refusing anything but tensors and plain containers (no code from the file)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the weights-only unpickler raises nearly any type on damaged bytes; none may escape
        text = str(e).strip()
        first_line = text.splitlines()[0][:200] if text else type(e).__name__
        raise XaresError(
            f"refusing training state {path}: it is not a plain tensor file ({first_line}); "
            "delete that checkpoint dir to resume from an earlier one"
        ) from e
