"""Behaviour on padded batches: the feature mask marks padding, a clip's frames do not depend on the other
clips of its batch, and no input (noise, padding, silence) gives NaN or Inf."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from xares_llm.check.context import REFERENCE_BATCH, Context, Skip
from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders.encoding import encode_clips, pad_batch, unpack_output

SILENCE_SECONDS = 1.0  # an all-zero clip: real datasets have them, and x / x.std() turns them into NaN
# Batched vs single-clip output: max |difference| relative to the clip's max |feature|. CUDA gets
# more room because cuDNN convolutions use TF32 by default.
BATCH_RTOL = {"cpu": 1e-3, "cuda": 1e-2}


def check_padding_mask(ctx: Context) -> tuple[bool, str]:
    ctx.require("mask length")
    clips = ctx.probe_clips()
    audio, audio_mask = pad_batch(clips)
    try:
        output = ctx.encoder(audio.to(ctx.device), audio_mask.to(ctx.device))
        features, mask = unpack_output(output)
    except Exception as e:
        return False, f"encoder(audio, audio_attention_mask) on a padded batch raised {type(e).__name__}: {e}"
    if mask is not None and tuple(mask.shape) != tuple(features.shape[:2]):
        return False, (
            f"on a padded batch the feature_mask has shape {tuple(mask.shape)} but the features "
            f"{tuple(features.shape[:2])}; derive the mask from audio_attention_mask per frame"
        )
    frames = features.shape[1]
    lengths = [len(c) for c in clips]
    if mask is None:  # extraction never pads such an encoder, so its padding frames are never read
        return True, (
            "no mask (None): extraction runs this encoder on clips of one exact length at a time (no padding, "
            "one forward per distinct length); return a feature mask to batch mixed lengths"
        )
    counts = [int(v) for v in mask.bool().sum(dim=1).tolist()]
    rows = features.detach().float().cpu()
    ctx.state.finite_inputs.append(("a padded batch", torch.cat([rows[i, :c] for i, c in enumerate(counts)])))
    longest = max(lengths)
    for n, count in zip(lengths, counts, strict=True):
        seconds = n / SAMPLE_RATE
        if n < longest and count >= frames:
            return False, (
                f"the {seconds:.2f} s clip in a batch padded to {longest / SAMPLE_RATE:.2f} s has all "
                f"{frames} frames marked real; set the mask to 0 for frames past each clip's end "
                "(from audio_attention_mask.sum(1))"
            )
        if count == 0:
            return False, f"the {seconds:.2f} s clip has every frame marked as padding; mark its real frames 1"
    shown = ", ".join(f"{n / SAMPLE_RATE:.2f} s -> {c}" for n, c in zip(lengths, counts, strict=True))
    return True, f"valid frames of {frames}: {shown}"


def check_batch_consistency(ctx: Context) -> tuple[bool, str]:
    ctx.require("mask length")
    clips = ctx.probe_clips()
    # a partner of the first clip's exact length: an encoder without a mask is batched only with those
    partner = np.resize(clips[-1], len(clips[0]))
    try:
        batched = encode_clips(ctx.encoder, [*clips, partner], ctx.device)[: len(clips)]
        single = [encode_clips(ctx.encoder, [clip], ctx.device)[0] for clip in clips]
    except Exception as e:
        return False, f"encoding the probe clips raised {type(e).__name__}: {e}"
    rtol = BATCH_RTOL[ctx.device.type]
    worst = 0.0
    for clip, b, s in zip(clips, batched, single, strict=True):
        seconds = len(clip) / SAMPLE_RATE
        if b.shape[0] != s.shape[0]:
            return False, (
                f"the {seconds:.2f} s clip gives {b.shape[0]} valid frames in a padded batch but "
                f"{s.shape[0]} alone; the number of real frames must depend only on the clip's length"
            )
        n = min(b.shape[0], s.shape[0])
        if n == 0:
            continue
        scale = max(s[:n].abs().max().item(), 1e-8)
        error = (b[:n] - s[:n]).abs().max().item()
        if not math.isfinite(error):
            raise Skip("non-finite features; see finite output")
        if error > rtol * scale:
            return False, (
                f"the {seconds:.2f} s clip differs between a padded batch and alone: "
                f"max |difference| {error:.3g} = {error / scale:.3g} of its max |feature| (tolerance {rtol:g}); "
                "honour audio_attention_mask and avoid statistics over the batch or over padding "
                "(batch max or mean, BatchNorm, attention to padded frames)"
            )
        worst = max(worst, error / scale)
    return True, f"{len(clips)} clips equal alone and batched (max relative difference {worst:.1g} <= {rtol:g})"


def check_finite(ctx: Context) -> tuple[bool, str]:
    ctx.require("features 3-D")
    inputs = [(f"torch.randn{REFERENCE_BATCH}", ctx.state.features)]
    inputs += ctx.state.finite_inputs
    if not ctx.results["mask length"].passed:  # encode_clips cannot trim with a broken mask
        return finite_report(inputs)
    try:
        silence = encode_clips(ctx.encoder, [np.zeros(round(SILENCE_SECONDS * SAMPLE_RATE), np.float32)], ctx.device)
        inputs.append((f"{SILENCE_SECONDS:g} s of silence", silence[0]))
    except Exception as e:
        return False, f"encoding {SILENCE_SECONDS:g} s of silence (all zeros) raised {type(e).__name__}: {e}"
    return finite_report(inputs)


def finite_report(inputs: Sequence[tuple[str, torch.Tensor]]) -> tuple[bool, str]:
    """Fail on the first input whose features hold NaN or Inf."""
    for what, features in inputs:
        n_nan = int(torch.isnan(features).sum())
        n_inf = int(torch.isinf(features).sum())
        if n_nan or n_inf:
            return False, (
                f"{n_nan} NaN and {n_inf} Inf values in the features of {what}; "
                "guard logs and divisions (clamp_min before log, add eps to norms)"
            )
    return True, "no NaN or Inf for " + ", ".join(what for what, _ in inputs)
