"""Decode one audio file's bytes to mono float32 at 16 kHz, as the reference does, with soundfile and soxr."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError

# Extensions a WebDataset sample may carry its audio under (the reference's list), in order of preference.
AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus", "m4a")


def decode_audio(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Bytes of any soundfile-readable format -> mono float32 samples at 16 kHz.

    Channels are averaged; a clip whose peak exceeds 1 is peak-normalised, as the reference does.
    Raises `DataError` naming the clip and its format when soundfile cannot read it.
    """
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        fmt = name.rsplit(".", 1)[-1] if "." in name else "unknown"
        raise DataError(f"cannot decode {name} (format {fmt!r}): {e}") from e
    mono = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    if peak > 1.0:
        mono = mono / peak
    return np.ascontiguousarray(mono, dtype=np.float32)
