"""Run every check in report order and collect one row each; a check never raises for a broken encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from xares_llm.check import contract, cost, coverage, padding, train_mode
from xares_llm.check.context import CheckResult, Context, Skip
from xares_llm.devices import resolve_device
from xares_llm.encoders.fingerprint import content_digest
from xares_llm.encoders.loader import load_encoder
from xares_llm.encoders.registry import ENCODERS

Check = Callable[[Context], tuple[bool, str]]


def run_checks(spec: str, kwargs: str | dict | None = None, device: str | None = None) -> list[CheckResult]:
    """Load the encoder named by `spec` (kwargs as JSON or dict) and run every check on `device`.

    Spec errors (file not found, several candidate classes, bad JSON) raise `EncoderError`.
    """
    torch_device = resolve_device(device)
    loaded = load_encoder(spec, kwargs)
    stable = None if spec in ENCODERS else same_weights_twice(spec, kwargs, content_digest(loaded))
    results = check_encoder(loaded.module, torch_device)
    return results if stable is None else [*results, stable]


def same_weights_twice(spec: str, kwargs: str | dict | None, first: str) -> CheckResult:
    """Your own encoder, constructed a second time, must hold the same weights: a random init without a
    seed gets a new encoder-id, so each extraction writes a new store and none is ever reused.
    (Built-ins load fixed weights and are not constructed twice.)"""
    again = content_digest(load_encoder(spec, kwargs))
    if again == first:
        return CheckResult("same encoder-id", True, False, "constructed twice: the same weights, the same encoder-id")
    return CheckResult(
        "same encoder-id",
        False,
        False,
        "constructed twice, the weights differ (a random init without a seed?): every extraction would get a "
        "new encoder-id and store; seed it (torch.manual_seed in __init__) or load saved weights",
    )


def check_encoder(encoder: object, device: str | torch.device = "cpu") -> list[CheckResult]:
    """Run every check on a constructed encoder; never raises for a broken encoder."""
    ctx = Context(encoder, resolve_device(device))
    with torch.inference_mode():
        for name, mandatory, check in steps(ctx):
            ctx.results[name] = run_one(ctx, name, mandatory, check)
    return list(ctx.results.values())


def all_mandatory_passed(results: Sequence[CheckResult]) -> bool:
    return all(r.passed for r in results if r.mandatory)


def steps(ctx: Context) -> list[tuple[str, bool, Check]]:
    """(name, mandatory, check) in report order. Frame rate is mandatory only when the encoder declares
    `frame_rate_hz`; peak memory only on CUDA, where the 24 GB rule can be measured."""
    declares_rate = hasattr(ctx.encoder, "frame_rate_hz")
    on_cuda = ctx.device.type == "cuda"
    return [
        ("nn.Module", True, contract.check_module),
        ("output_dim", True, contract.check_output_dim),
        ("sampling_rate", True, contract.check_sampling_rate),
        ("forward signature", True, contract.check_signature),
        ("reference call", True, contract.check_reference_call),
        ("returns 2-tuple", True, contract.check_tuple),
        ("features 3-D", True, contract.check_features),
        ("feature dim", True, contract.check_feature_dim),
        ("mask type", True, contract.check_mask_type),
        ("mask length", True, contract.check_mask_length),
        ("padding mask", True, padding.check_padding_mask),
        ("batch consistency", True, padding.check_batch_consistency),
        ("finite output", True, padding.check_finite),  # last of these: it covers the batches' output too
        ("30 s clip", True, cost.check_long_clip),
        ("coverage", True, coverage.check_coverage),
        ("train mode", False, train_mode.check_train_mode),
        ("frame rate", declares_rate, cost.check_frame_rate),
        ("time", False, cost.check_time),
        ("peak memory", on_cuda, cost.check_memory),
    ]


def run_one(ctx: Context, name: str, mandatory: bool, check: Check) -> CheckResult:
    try:
        passed, detail = check(ctx)
    except Skip as skip:
        ctx.skips[name] = str(skip)
        return CheckResult(name, False, mandatory, f"skipped: {skip}", skipped=True)
    except Exception as e:  # an encoder odd enough to break the check itself still gets a row
        return CheckResult(name, False, mandatory, f"the check raised {type(e).__name__}: {e}")
    return CheckResult(name, passed, mandatory, detail)
