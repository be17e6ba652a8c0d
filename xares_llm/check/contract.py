"""The contract itself: what the reference checker asks (module, output_dim, forward, the reference call's
types and shapes) and the mask shape extraction relies on."""

from __future__ import annotations

import inspect

import torch

from xares_llm.check.context import REFERENCE_BATCH, Context
from xares_llm.constants import SAMPLE_RATE


def check_module(ctx: Context) -> tuple[bool, str]:
    if not isinstance(ctx.encoder, torch.nn.Module):
        ctx.state.fatal = "the encoder is not a torch.nn.Module"
        return False, (
            f"expected a torch.nn.Module, got {type(ctx.encoder).__name__}; "
            "subclass torch.nn.Module and call super().__init__()"
        )
    ctx.encoder.eval()  # the reference trains with the encoder in train mode (docs/reference-parity.md); we do not
    try:
        ctx.encoder.to(ctx.device)
    except Exception as e:
        ctx.state.fatal = f"moving the encoder to {ctx.device} failed"
        return False, f"encoder.to({str(ctx.device)!r}) raised {type(e).__name__}: {e}"
    n_params = sum(p.numel() for p in ctx.encoder.parameters())
    return True, f"{type(ctx.encoder).__name__}, {n_params:,} parameters, eval mode on {ctx.device}"


def check_output_dim(ctx: Context) -> tuple[bool, str]:
    ctx.require("nn.Module")
    if not hasattr(ctx.encoder, "output_dim"):
        return False, "no attribute output_dim; set self.output_dim = D (the feature size) in __init__"
    value = ctx.encoder.output_dim
    if isinstance(value, bool) or not isinstance(value, int):
        return False, f"output_dim must be an int, got {value!r} ({type(value).__name__}); use int(...)"
    if value <= 0:
        return False, f"output_dim must be positive, got {value}"
    ctx.state.output_dim = value
    return True, f"output_dim = {value}"


def check_sampling_rate(ctx: Context) -> tuple[bool, str]:
    ctx.require("nn.Module")
    if not hasattr(ctx.encoder, "sampling_rate"):
        return True, f"not declared; audio is fed at {SAMPLE_RATE} Hz"
    rate = ctx.encoder.sampling_rate
    if rate != SAMPLE_RATE:
        return False, (
            f"sampling_rate is {rate!r} but every clip is fed at {SAMPLE_RATE} Hz; "
            f"resample inside forward or set sampling_rate = {SAMPLE_RATE}"
        )
    return True, f"sampling_rate = {SAMPLE_RATE}"


def check_signature(ctx: Context) -> tuple[bool, str]:
    ctx.require("nn.Module")
    try:
        parameters = inspect.signature(ctx.encoder.forward).parameters.values()
    except (TypeError, ValueError) as e:
        return False, f"cannot inspect forward's signature: {e}"
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return True, f"forward({', '.join(p.name for p in positional) or '*args'})"
    return False, (
        f"forward takes {len(positional)} positional argument(s) but is called as "
        "forward(audio, audio_attention_mask); add `audio_attention_mask=None`"
    )


def check_reference_call(ctx: Context) -> tuple[bool, str]:
    ctx.require("nn.Module")
    audio = torch.randn(*REFERENCE_BATCH, generator=ctx.generator).to(ctx.device)
    try:
        ctx.state.output = ctx.encoder(audio, None)
    except Exception as e:
        ctx.state.fatal = "the reference call failed"
        return False, f"encoder(torch.randn{REFERENCE_BATCH}, None) raised {type(e).__name__}: {e}"
    ctx.synchronize()
    return True, f"encoder(torch.randn{REFERENCE_BATCH}, None) returned"


def check_tuple(ctx: Context) -> tuple[bool, str]:
    ctx.require("reference call")
    output = ctx.state.output
    if isinstance(output, tuple | list) and len(output) == 2:
        return True, f"{type(output).__name__} of 2"
    ctx.state.fatal = "the encoder does not return (features, feature_mask)"
    got = describe(output)
    if isinstance(output, tuple | list):
        got = f"a {type(output).__name__} of {len(output)} items"
    return False, f"expected a 2-tuple (features, feature_mask), got {got}; return `features, None` if no mask"


def check_features(ctx: Context) -> tuple[bool, str]:
    ctx.require("returns 2-tuple")
    features = ctx.state.output[0]
    batch = REFERENCE_BATCH[0]
    if not isinstance(features, torch.Tensor):
        ctx.state.fatal = "features are not a tensor"
        return False, f"features must be a torch.Tensor [B, T', D], got {describe(features)}"
    if features.dim() != 3:
        ctx.state.fatal = "features are not 3-D"
        return False, (
            f"features must be 3-D [B, T', D], got {features.dim()}-D of shape {tuple(features.shape)}; "
            "keep the time axis (no pooling over time), one row per frame"
        )
    if features.shape[0] != batch:
        ctx.state.fatal = "features have the wrong batch size"
        return False, f"features must have batch size {batch} (one row per input clip), got {tuple(features.shape)}"
    if features.shape[1] == 0:
        ctx.state.fatal = "features have no frames"
        return False, f"features have 0 frames for {REFERENCE_BATCH[1]} samples: {tuple(features.shape)}"
    if not features.is_floating_point():
        ctx.state.fatal = "features are not floating point"
        return False, f"features must be floating point, got {features.dtype}"
    ctx.state.features = features.detach().float().cpu()
    return True, f"shape {tuple(features.shape)}, {features.dtype}, on {features.device}"


def check_feature_dim(ctx: Context) -> tuple[bool, str]:
    ctx.require("output_dim", "features 3-D")
    got = ctx.state.features.shape[-1]
    if got != ctx.state.output_dim:
        return False, (
            f"features have D = {got} but output_dim = {ctx.state.output_dim}; "
            f"make output_dim equal the last dimension of the features ({got}) or fix the projection"
        )
    return True, f"D = {got} == output_dim"


def check_mask_type(ctx: Context) -> tuple[bool, str]:
    ctx.require("features 3-D")
    mask = ctx.state.output[1]
    if mask is None:
        return True, "None: every frame counts as real"
    if not isinstance(mask, torch.Tensor):
        return False, f"feature_mask must be None or a 2-D torch.Tensor [B, T'], got {describe(mask)}"
    if mask.dim() != 2:
        return False, f"feature_mask must be 2-D [B, T'], got {mask.dim()}-D of shape {tuple(mask.shape)}"
    return True, f"{mask.dtype} tensor"


def check_mask_length(ctx: Context) -> tuple[bool, str]:
    ctx.require("mask type")
    mask = ctx.state.output[1]
    if mask is None:
        return True, "no mask (None)"
    batch, frames = ctx.state.features.shape[:2]
    if tuple(mask.shape) != (batch, frames):
        return False, (
            f"feature_mask has shape {tuple(mask.shape)} but features have {batch} clips of {frames} frames; "
            f"the mask needs one entry per feature frame: shape ({batch}, {frames})"
        )
    mask = mask.detach().cpu()
    if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
        return False, f"feature_mask must hold 0/1 (or bool), got values {sorted(mask.unique().tolist())[:5]}"
    return True, f"shape {tuple(mask.shape)} matches the features"


def describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a bare Tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"
