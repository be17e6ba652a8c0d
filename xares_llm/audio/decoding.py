"""Decode one audio file's bytes to mono float32 at 16 kHz, as the reference does, with soundfile and soxr."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr

from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError

READ_BLOCK = 1 << 16  # frames decoded at a time
MAX_SAMPLES_PER_BYTE = 64  # beyond this a header's frame count is not trusted to size the array (FLAC ~0.5)
MIN_RATE = 1000  # Hz; the slowest real recordings are 8 kHz telephone speech
# Extensions a WebDataset sample may carry its audio under (the reference's list), in order of preference.
AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus", "m4a")


def decode_audio(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Bytes of any soundfile-readable format -> mono float32 samples at 16 kHz.

    Channels are averaged; a clip whose peak exceeds 1 is peak-normalised, as the reference does.
    Raises `DataError` naming the clip and its format when soundfile cannot read it.
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
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
        low, high = (float(mono.min()), float(mono.max())) if mono.size else (0.0, 0.0)
    peak = max(-low, high)
    if peak > 1.0:
        mono /= peak  # in place: the array is this function's own
    return mono


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
