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
READ_BLOCK = 1 << 16  # frames decoded at a time
MAX_SAMPLES_PER_BYTE = 64  # beyond this a header's frame count is not trusted to size the array (FLAC ~0.5)
MIN_RATE = 1000  # Hz; the slowest real recordings are 8 kHz telephone speech


def decode_audio(data: bytes, name: str = "<bytes>", resampler: str = REFERENCE_RESAMPLER) -> np.ndarray:
    """Bytes of any soundfile-readable format -> mono float32 samples at 16 kHz.

    Channels are averaged; a clip whose peak exceeds 1 is peak-normalised before resampling, as the
    reference does. Raises `DataError` naming the clip and its format when soundfile cannot read it.
    """
    fmt = name.rsplit(".", 1)[-1] if "." in name else "unknown"
    buffer = io.BytesIO(data)
    try:
        mono, rate = read_mono(buffer, len(data))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        why = str(e).replace(f"Error opening {buffer!r}: ", "").replace(repr(buffer), name)  # no memory address
        raise DataError(f"cannot decode {name} (format {fmt!r}): {why}") from e
    if rate < MIN_RATE:  # resampling multiplies the samples by 16000 / rate: a crafted header's rate is bounded
        raise DataError(f"cannot decode {name} (format {fmt!r}): sample rate {rate} Hz, below {MIN_RATE} Hz")
    low, high = (float(mono.min()), float(mono.max())) if mono.size else (0.0, 0.0)  # NaN propagates; no temp
    if not (np.isfinite(low) and np.isfinite(high)):  # a float WAV may hold them; normalising would spread NaN
        raise DataError(f"cannot decode {name} (format {fmt!r}): it holds NaN or Inf samples")
    peak = max(-low, high)
    if peak > 1.0:
        mono /= np.float32(peak)  # in place: the array is this function's own
    if rate != SAMPLE_RATE:
        mono = resample_to_16k(mono, rate, resampler)
    return np.ascontiguousarray(mono, dtype=np.float32)


def resample_to_16k(mono: np.ndarray, rate: int, resampler: str) -> np.ndarray:
    if resampler == SINC:
        return resample(mono, rate, SAMPLE_RATE)
    if resampler == SOXR:
        return soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    raise DataError(f"resampler must be one of {', '.join(RESAMPLERS)}, got {resampler!r}")


def read_mono(buffer: io.BytesIO, size: int) -> tuple[np.ndarray, int]:
    """The file's samples as one float32 array, channels averaged block by block, and its sample rate.

    Memory is the mono clip plus one block: the channels are never held all at once, and the header's
    frame count sizes the array only as far as the file's size makes it plausible, so a header
    claiming billions of frames costs what the file really decodes to.
    """
    with sf.SoundFile(buffer) as f:
        rate, claimed = f.samplerate, max(0, f.frames)
        mono = np.empty(min(claimed, size * MAX_SAMPLES_PER_BYTE + READ_BLOCK), dtype=np.float32)
        filled, extra = 0, []
        for block in f.blocks(blocksize=READ_BLOCK, dtype="float32", always_2d=True):
            mixed = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
            fits = min(len(mixed), len(mono) - filled)
            mono[filled : filled + fits] = mixed[:fits]
            filled += fits
            if fits < len(mixed):
                extra.append(mixed[fits:].copy())
    if extra:  # more than the header or the size suggested: rare, and paid for with real data
        return np.concatenate([mono[:filled], *extra]), rate
    return (mono if filled == len(mono) else mono[:filled].copy()), rate
