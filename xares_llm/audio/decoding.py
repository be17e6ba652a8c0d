"""Decode one audio file's bytes to mono float32 at 16 kHz, as the reference does, with soundfile and soxr."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError

MIN_RATE = 1000  # Hz; the slowest real recordings are 8 kHz telephone speech
# Extensions a WebDataset sample may carry its audio under (the reference's list), in order of preference.
AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus", "m4a")


def decode_audio(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Bytes of any soundfile-readable format -> mono float32 samples at 16 kHz.

    Channels are averaged; a clip whose peak exceeds 1 is peak-normalised, as the reference does.
    Raises `DataError` naming the clip and its format when soundfile cannot read it.
    """
    buffer = io.BytesIO(data)
    fmt = name.rsplit(".", 1)[-1] if "." in name else "unknown"
    try:
        samples, rate = sf.read(buffer, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        why = str(e).replace(f"Error opening {buffer!r}: ", "").replace(repr(buffer), name)  # no memory address
        raise DataError(f"cannot decode {name} (format {fmt!r}): {why}") from e
    if rate < MIN_RATE:  # resampling multiplies the samples by 16000 / rate: a crafted header's rate is bounded
        raise DataError(f"cannot decode {name} (format {fmt!r}): sample rate {rate} Hz, below {MIN_RATE} Hz")
    if not np.isfinite(samples).all():  # a float WAV may hold them; normalising would make the clip NaN
        raise DataError(f"cannot decode {name} (format {fmt!r}): it holds NaN or Inf samples")
    mono = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    if peak > 1.0:
        mono = mono / peak
    return np.ascontiguousarray(mono, dtype=np.float32)
