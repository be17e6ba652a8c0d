"""Fingerprint an encoder so a changed encoder never reads or extends another encoder's store.

sha256 over: class qualname, kwargs, the source file text (path encoders), every parameter and
buffer tensor (name, dtype, shape, bytes), the preprocessing settings and the store dtype.
``encoder-id = <slug>-<first 12 hex>``.
"""

from __future__ import annotations

import hashlib
import json

import torch

from xares_llm.encoders.loader import LoadedEncoder

ID_HEX = 12  # hex digits of the fingerprint kept in the encoder-id


def fingerprint(encoder: LoadedEncoder, preprocessing: dict, dtype: str) -> str:
    digest = hashlib.sha256()
    header = {
        "qualname": encoder.qualname,
        "kwargs": encoder.kwargs,
        "preprocessing": preprocessing,
        "dtype": dtype,
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    if encoder.source_text is not None:
        digest.update(encoder.source_text.encode())
    tensors = [*encoder.module.named_parameters(), *encoder.module.named_buffers()]
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def encoder_id(encoder: LoadedEncoder, digest: str) -> str:
    return f"{encoder.slug}-{digest[:ID_HEX]}"
