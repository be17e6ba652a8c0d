"""Decode one audio file's bytes to mono float32 at 16 kHz, in the reference's order of operations.

The reference (xares-llm 0.0.12, `audiowebdataset.preprocess_audio`) averages the channels,
peak-normalises a clip whose peak exceeds 1, then resamples with torchaudio's windowed sinc; this
module does the same with soundfile and `xares_llm.audio.resample`. soxr HQ is an option that gives
features the reference does not see (the store records which resampler made it).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

from xares_llm.audio.resample import resample
from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError

# The reference's decoder list, in its order of preference (`wds.rename(audio="flac;mp3;sox;wav;mp4a;ogg;wma;opus")`).
AUDIO_EXTENSIONS = ("flac", "mp3", "sox", "wav", "ogg", "wma", "opus")
# Audio the reference never reads: its rename list spells m4a as "mp4a", so an m4a-only sample has no audio.
SKIPPED_EXTENSIONS = {"m4a": "m4a audio: the reference system never reads it (its decoder list spells it mp4a)"}
SINC = "sinc"  # torchaudio's sinc_interp_hann, width 6, rolloff 0.99: the reference's resampler
SOXR = "soxr"  # soxr HQ: not the reference setting
RESAMPLERS = (SINC, SOXR)
REFERENCE_RESAMPLER = SINC


def decode_audio(data: bytes, name: str = "<bytes>", resampler: str = REFERENCE_RESAMPLER) -> np.ndarray:
    """Bytes of any soundfile-readable format -> mono float32 samples at 16 kHz.

    Channels are averaged; a clip whose peak exceeds 1 is peak-normalised before resampling, as the
    reference does. Raises `DataError` naming the clip and its format when soundfile cannot read it.
    """
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        fmt = name.rsplit(".", 1)[-1] if "." in name else "unknown"
        raise DataError(f"cannot decode {name} (format {fmt!r}): {e}") from e
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    del samples
    peak = float(np.abs(mono).max()) if mono.size else 0.0
    if peak > 1.0:
        mono = np.divide(mono, np.float32(peak), out=mono if mono.flags.writeable else None)
    if rate != SAMPLE_RATE:
        mono = resample_to_16k(mono, rate, resampler)
    return np.ascontiguousarray(mono, dtype=np.float32)


def resample_to_16k(mono: np.ndarray, rate: int, resampler: str) -> np.ndarray:
    if resampler == SINC:
        return resample(mono, rate, SAMPLE_RATE)
    if resampler == SOXR:
        return soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    raise DataError(f"resampler must be one of {', '.join(RESAMPLERS)}, got {resampler!r}")
