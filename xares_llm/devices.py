"""Which device a command runs on, and the autocast dtype a recipe's precision means there."""

from __future__ import annotations

import torch

from xares_llm.errors import XaresError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto`` -> cuda when available, else cpu; `cpu`, `cuda` or `cuda:N` otherwise,
    refused early (one line, no traceback) when it cannot be used here."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as e:
        raise XaresError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from e
    if chosen.type not in ("cpu", "cuda"):
        raise XaresError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise XaresError(f"device {device!r} requested but torch.cuda.is_available() is False; use --device cpu")
    return chosen


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """fp32 on CPU whatever the recipe says; fp16/bf16 autocast on CUDA; auto = bf16 where supported."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def device_name(device: str | torch.device) -> str:
    """The card's name on CUDA, the processor's elsewhere: what a cost record says ran the work."""
    import platform

    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
