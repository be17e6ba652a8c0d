"""Run a contract encoder on a list of clips and get back each clip's valid frames.

This is the one place that pads, masks, windows long clips and trims padding frames, so
extraction, `xares check`, the benchmarks and the online-encoder baseline all agree.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import EncoderError


@runtime_checkable
class ContractEncoder(Protocol):
    """The challenge's encoder contract (docs/encoders.md); any `nn.Module` of this shape loads as is.

    Optional attributes read when present: ``sampling_rate`` (16000), ``max_input_seconds``,
    ``frame_rate_hz``, and ``pads_to_max``: True when the encoder pads every window to
    ``max_input_seconds`` whatever the clip's length (Whisper), so extraction budgets a batch by
    that padded input rather than by its longest clip.
    """

    output_dim: int

    def __call__(
        self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """audio (B, T) float at 16 kHz, mask (B, T) 1 = real sample -> features (B, T', D), mask (B, T') or None."""
        ...


# Encoders seen returning ``mask=None``: later calls batch them by exact length from the start.
_MASKLESS: weakref.WeakSet = weakref.WeakSet()


def padded_input_samples(encoder: object, spec: str) -> int | None:
    """Samples every window is padded to by an encoder that declares ``pads_to_max``; None otherwise."""
    if not getattr(encoder, "pads_to_max", False):
        return None
    seconds = getattr(encoder, "max_input_seconds", None)
    if not isinstance(seconds, int | float) or seconds <= 0:
        raise EncoderError(
            f"encoder {spec!r} declares pads_to_max but max_input_seconds is {seconds!r}; "
            "declare the length in seconds it pads every window to"
        )
    return int(seconds * SAMPLE_RATE)


def pad_batch(clips: Sequence[np.ndarray], pin_memory: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of float32 samples -> audio (B, T) zero-padded, mask (B, T) with 1 on real samples.

    `pin_memory` allocates both in page-locked memory, so the copy to a GPU can run asynchronously.
    A single clip is passed as it is, without padding or copy.
    """
    if len(clips) == 1 and len(clips[0]):
        # one clip (a long one is batched alone): its own samples and a mask that is a view of one
        # element, not a padded copy (a 2-hour clip is 460 MB, its int64 mask 920 MB); the encoder
        # only reads its input, and a copy to a GPU from pageable memory is merely synchronous
        audio = torch.from_numpy(np.asarray(clips[0], dtype=np.float32)).unsqueeze(0)
        return audio, torch.ones(1, 1, dtype=torch.long).expand(1, audio.shape[1])
    longest = max(1, max(len(c) for c in clips))
    audio = torch.zeros(len(clips), longest, pin_memory=pin_memory)
    mask = torch.zeros(len(clips), longest, dtype=torch.long, pin_memory=pin_memory)
    for i, clip in enumerate(clips):
        audio[i, : len(clip)] = torch.from_numpy(np.asarray(clip, dtype=np.float32))
        mask[i, : len(clip)] = 1
    return audio, mask


def windows(clip: np.ndarray, max_samples: int | None) -> list[np.ndarray]:
    """Cut a clip into consecutive windows of at most `max_samples` (the encoder's input limit)."""
    if not max_samples or len(clip) <= max_samples:
        return [clip]
    return [clip[start : start + max_samples] for start in range(0, len(clip), max_samples)]


# Encoder precision (encoder.json `encoder_precision`) -> autocast dtype; None = plain fp32.
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on the encoder's device (CPU or CUDA); no autocast at all when `dtype` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.inference_mode()
def encode_clips(
    encoder: ContractEncoder,
    clips: Sequence[np.ndarray],
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> list[torch.Tensor]:
    """Encode clips (16 kHz float32 samples) in one padded batch -> per clip frames (T'_i, D) on CPU.

    Clips longer than ``encoder.max_input_seconds`` are encoded as separate windows whose frames
    are concatenated in order. On CUDA the padded batch is built in pinned memory and copied with
    ``non_blocking=True``: the copy overlaps the host work queued behind it, and the stream orders it
    before the encoder's kernels.

    An encoder that returns ``mask=None`` says every frame is real, yet a padded batch has padding
    frames that no rule can tell apart exactly (a clip's frame count is not proportional to its
    length). Such an encoder is run on groups of windows of one exact length, which have no padding,
    so each clip gets the frames it gets alone, whatever the batch. The reference system feeds the
    padding frames to the LLM instead (docs/reference-parity.md).
    """
    device = torch.device(device)
    max_seconds = getattr(encoder, "max_input_seconds", None)
    max_samples = int(max_seconds * SAMPLE_RATE) if max_seconds else None
    pieces: list[np.ndarray] = []
    owner: list[int] = []
    for index, clip in enumerate(clips):
        for window in windows(clip, max_samples):
            pieces.append(window)
            owner.append(index)
    one_length = len({len(p) for p in pieces}) == 1
    frames = None if encoder in _MASKLESS and not one_length else forward(encoder, pieces, device, autocast_dtype)
    if frames is None:
        with contextlib.suppress(TypeError):  # an encoder that takes no weak reference is probed each call
            _MASKLESS.add(encoder)
        frames = [np.empty(0)] * len(pieces)
        for length in dict.fromkeys(len(p) for p in pieces):
            group = [i for i, p in enumerate(pieces) if len(p) == length]
            found = forward(encoder, [pieces[i] for i in group], device, autocast_dtype, maskless_ok=True)
            for i, piece_frames in zip(group, found, strict=True):
                frames[i] = piece_frames
    per_clip: list[list[np.ndarray]] = [[] for _ in clips]
    for index, piece_frames in zip(owner, frames, strict=True):
        per_clip[index].append(piece_frames)
    return [
        torch.from_numpy(np.concatenate(parts) if len(parts) > 1 else np.ascontiguousarray(parts[0]))
        for parts in per_clip
    ]


def forward(
    encoder: ContractEncoder,
    pieces: Sequence[np.ndarray],
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    maskless_ok: bool = False,
) -> list[np.ndarray] | None:
    """Each piece's real frames from one padded batch; None when the encoder returned ``mask=None`` for
    pieces of several lengths (their padding frames are unknown) unless `maskless_ok`."""
    cuda = device.type == "cuda"
    audio, mask = pad_batch(pieces, pin_memory=cuda)
    with autocast_context(device, autocast_dtype):
        output = encoder(audio.to(device, non_blocking=cuda), mask.to(device, non_blocking=cuda))
    features, feature_mask = unpack_output(output)
    if feature_mask is None and not maskless_ok and len({len(p) for p in pieces}) > 1:
        return None
    # Per-row selection in numpy: torch's boolean indexing costs milliseconds per row here.
    rows = features.detach().float().cpu().numpy()
    if feature_mask is None:  # pieces of one length: no padding, every frame is real
        return list(rows)
    masks = feature_mask.bool().cpu().numpy()
    kept = []
    for row, keep in zip(rows, masks, strict=True):
        count = int(keep.sum())
        kept.append(row[:count] if keep[:count].all() else row[keep])  # a prefix is a view, not a copy
    return kept


def unpack_output(output: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The contract's ``(features, mask)``; anything else is a contract violation."""
    if not isinstance(output, tuple | list) or len(output) != 2:
        raise TypeError(f"encoder must return a 2-tuple (features, feature_mask), got {type(output).__name__}")
    features, feature_mask = output
    if not isinstance(features, torch.Tensor) or features.dim() != 3:
        raise TypeError("encoder features must be a 3-D tensor [B, T', D]")
    if feature_mask is not None and (not isinstance(feature_mask, torch.Tensor) or feature_mask.dim() != 2):
        raise TypeError("encoder feature_mask must be None or a 2-D tensor [B, T']")
    return features, feature_mask
