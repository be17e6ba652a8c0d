"""Store dtypes: how frames are held in memory, written, and handed back to readers.

``float32`` and ``float16`` store the frames as they are. ``int8`` stores each frame as
``round(x / scale)`` with one float32 ``scale = max|x| / 127`` per frame (a zero frame has scale 0
and reads back as zeros); readers get float32 ``q * scale``, within ``scale / 2`` of the input. A
NaN or Inf in a frame makes its scale NaN, so the whole frame reads back as NaN and is still
counted as non-finite. ``bitround<N>`` stores float16 with only N of its 10 mantissa bits kept
(numcodecs ``BitRound`` as a filter before zstd, so the rounded bits compress); readers get
float16, within a relative ``2**-(N+1)`` of the float16 value.
"""

from __future__ import annotations

import warnings

import numpy as np

INT8 = "int8"
INT8_MAX = 127
BITROUND = "bitround"
BITROUND_BITS = range(1, 11)  # float16 has 10 mantissa bits; 10 keeps them all
STORE_DTYPES = ("float16", "float32", INT8, *(f"{BITROUND}{n}" for n in BITROUND_BITS))
DTYPE_CHOICES = f"float16, float32, int8 or {BITROUND}<N> (N from 1 to {BITROUND_BITS[-1]}, e.g. {BITROUND}7)"


def bitround_bits(dtype: str) -> int | None:
    """The mantissa bits a ``bitround<N>`` dtype keeps; None for any other dtype."""
    if dtype.startswith(BITROUND) and dtype[len(BITROUND) :].isdigit():
        return int(dtype[len(BITROUND) :])
    return None


def held_dtype(dtype: str) -> np.dtype:
    """The float dtype frames are computed into before writing: int8 quantises float32 frames."""
    if dtype == INT8:
        return np.dtype(np.float32)
    return np.dtype(np.float16 if bitround_bits(dtype) is not None else dtype)


def array_dtype(dtype: str) -> np.dtype:
    """The data type of the ``frames`` array on disk."""
    return np.dtype(np.int8) if dtype == INT8 else held_dtype(dtype)


def quantise_int8(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q int8 [T, D], scale float32 [T]) with frames ~= q * scale[:, None]."""
    frames = np.asarray(frames, dtype=np.float32)
    if not frames.size:
        return np.zeros(frames.shape, np.int8), np.zeros(len(frames), np.float32)
    with np.errstate(invalid="ignore"):  # a NaN or Inf frame gets a NaN scale, on purpose
        peak = np.abs(frames).max(axis=1)
        scale = (peak / INT8_MAX).astype(np.float32)
        scale[np.isinf(scale)] = np.nan
        safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
        q = np.rint(frames / safe[:, None])
    q = np.nan_to_num(q, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(q, -INT8_MAX, INT8_MAX).astype(np.int8), scale


def dequantise_int8(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float32 frames from int8 codes and their per-frame scales."""
    return q.astype(np.float32) * scale.astype(np.float32, copy=False)[:, None]


def quiet_numcodecs() -> None:
    """Silence zarr's note that numcodecs codecs (BitRound) are outside the Zarr v3 spec: this format
    names the one it uses and its reader accepts only that one. Called where parts are opened, since
    a filter set once at import does not survive `warnings.catch_warnings` blocks (pytest's among them)."""
    warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr", category=UserWarning)
