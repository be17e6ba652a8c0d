"""Fingerprint an encoder so a changed encoder never reads or extends another encoder's store.

sha256 over: class qualname, kwargs, the preprocessing settings, the store dtype, the encoder's
compute precision, and a digest of its content (the source file text of path encoders, every
parameter and buffer tensor: name, dtype, shape, bytes). The content digest is computed once, so
the ids of one encoder under every dtype and precision cost one pass over its weights.
``encoder-id = <slug>-<first 12 hex>``.
"""

from __future__ import annotations

import hashlib
import json

import torch

from xares_llm.encoders.loader import LoadedEncoder

ID_HEX = 12  # hex digits of the fingerprint kept in the encoder-id


def content_digest(encoder: LoadedEncoder) -> str:
    """sha256 of the source text (path encoders) and every parameter and buffer."""
    digest = hashlib.sha256()
    if encoder.source_text is not None:
        digest.update(encoder.source_text.encode())
    tensors = [*encoder.module.named_parameters(), *encoder.module.named_buffers()]
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def fingerprint(
    encoder: LoadedEncoder, preprocessing: dict, dtype: str, precision: str, content: str | None = None
) -> str:
    """The store fingerprint; pass `content` (from `content_digest`) to skip re-hashing the weights."""
    header = {
        "qualname": encoder.qualname,
        "kwargs": encoder.kwargs,
        "preprocessing": preprocessing,
        "dtype": dtype,
        "encoder_precision": precision,
        "content": content or content_digest(encoder),
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode()).hexdigest()


def encoder_id(encoder: LoadedEncoder, digest: str) -> str:
    return f"{encoder.slug}-{digest[:ID_HEX]}"
