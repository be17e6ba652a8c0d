"""Describing an encoder for its store: load it once, check what the store needs, fingerprint it.

The fingerprint (`xares_llm.encoders.fingerprint`) covers the weights, kwargs, source, audio
preprocessing, store dtype and compute precision; `candidate_ids` hashes the weights once for every
combination, so finding a store by spec costs one pass over the weights.
"""

from __future__ import annotations

import numpy as np
import torch

from xares_llm import __version__
from xares_llm.audio.decoding import REFERENCE_RESAMPLER, RESAMPLERS
from xares_llm.cache import EncoderInfo
from xares_llm.cache.dtypes import DTYPE_CHOICES, STORE_DTYPES
from xares_llm.cache.format import ENCODER_PRECISIONS, REFERENCE_PRECISION
from xares_llm.constants import SAMPLE_RATE
from xares_llm.devices import resolve_device
from xares_llm.encoders.encoding import encode_clips
from xares_llm.encoders.fingerprint import content_digest, fingerprint
from xares_llm.encoders.fingerprint import encoder_id as make_encoder_id
from xares_llm.encoders.loader import LoadedEncoder, load_encoder
from xares_llm.errors import EncoderError, StoreError

PROBE_SECONDS = 10.0  # audio used to measure an encoder's frame rate when it does not declare one


RESAMPLER_NAMES = {"sinc": "sinc_interp_hann width 6 rolloff 0.99", "soxr": "soxr HQ"}


def preprocessing_settings(resampler: str = REFERENCE_RESAMPLER) -> dict:
    """What turns a file into the encoder's input; part of the fingerprint (in this order of operations)."""
    return {
        "sample_rate": SAMPLE_RATE,
        "mono": "channel mean",
        "peak_normalise": "if |x| > 1, before resampling",
        "resampler": RESAMPLER_NAMES[resampler],
    }


def check_settings(precision: str, resampler: str, device: torch.device) -> None:
    """One-line refusals for a precision this device cannot honour or an unknown resampler."""
    if precision not in ENCODER_PRECISIONS:
        raise EncoderError(
            f"--encoder-precision must be one of {', '.join(ENCODER_PRECISIONS)} "
            f"({REFERENCE_PRECISION} is the reference setting), got {precision!r}"
        )
    if resampler not in RESAMPLERS:
        choices = f"{', '.join(RESAMPLERS)} ({REFERENCE_RESAMPLER} is the reference setting)"
        raise EncoderError(f"--resampler must be one of {choices}, got {resampler!r}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise EncoderError(f"--encoder-precision bf16: {device} has no bfloat16 support; use fp16 or fp32")


def prepare_encoder(
    spec: str,
    kwargs: str | dict | None,
    device: str,
    dtype: str,
    precision: str = REFERENCE_PRECISION,
    resampler: str = REFERENCE_RESAMPLER,
) -> tuple[LoadedEncoder, EncoderInfo]:
    """Load the encoder, put it in eval mode on `device`, and describe it for encoder.json.

    `precision` is the encoder's compute precision (fp16/bf16 = autocast) and `resampler` how clips
    reach 16 kHz; both are part of the fingerprint.
    """
    if dtype not in STORE_DTYPES:
        raise StoreError(f"--dtype must be {DTYPE_CHOICES}, got {dtype!r}")
    torch_device = resolve_device(device)
    check_settings(precision, resampler, torch_device)
    device = str(torch_device)
    loaded = load_encoder(spec, kwargs)
    module = loaded.module.eval().to(device)
    rate = getattr(module, "sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise EncoderError(f"encoder {spec!r} declares sampling_rate={rate}; the benchmark feeds {SAMPLE_RATE} Hz")
    if not isinstance(getattr(module, "output_dim", None), int):
        raise EncoderError(f"encoder {spec!r} has no integer `output_dim`; run `xares check {spec}`")
    digest = fingerprint(loaded, preprocessing_settings(resampler), dtype, precision)
    frame_rate = getattr(module, "frame_rate_hz", None) or measure_frame_rate(module, device)
    info = EncoderInfo(
        encoder_id=make_encoder_id(loaded, digest),
        spec=spec,
        qualname=loaded.qualname,
        kwargs=loaded.kwargs,
        fingerprint=digest,
        output_dim=module.output_dim,
        frame_rate_hz=float(frame_rate),
        sample_rate=SAMPLE_RATE,
        dtype=dtype,
        encoder_precision=precision,
        windowing={"max_input_seconds": getattr(module, "max_input_seconds", None)},
        xares_version=__version__,
        resampler=resampler,
    )
    return loaded, info


def candidate_ids(spec: str, kwargs: str | dict | None) -> list[str]:
    """Every encoder-id `spec` can have, one per resampler, encoder precision and store dtype (all in
    the fingerprint), the reference settings first and the default dtype first within them."""
    loaded = load_encoder(spec, kwargs)
    content = content_digest(loaded)
    return [
        make_encoder_id(loaded, fingerprint(loaded, preprocessing_settings(resampler), dtype, precision, content))
        for resampler in RESAMPLERS
        for precision in ENCODER_PRECISIONS
        for dtype in STORE_DTYPES
    ]


def measure_frame_rate(module: torch.nn.Module, device: str) -> float:
    probe = np.zeros(int(PROBE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    (frames,) = encode_clips(module, [probe], device)
    return len(frames) / PROBE_SECONDS
