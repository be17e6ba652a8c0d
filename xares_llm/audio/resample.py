"""The reference's resampler: torchaudio's windowed-sinc `sinc_interp_hann`, width 6, rolloff 0.99.

The reference system (xares-llm 0.0.12, `audiowebdataset.preprocess_audio`) resamples each clip with
`torchaudio.functional.resample` on its float32 waveform. This module computes the same thing in
numpy, step for step and in the same dtype, so features match the reference's without depending on
torchaudio:

- both rates are divided by their gcd (orig, new);
- base = min(orig, new) * rolloff, width = ceil(lowpass_width * orig / base);
- for output phase i in [0, new) and input tap k in [-width, width + orig):
  t = clamp((-i / new + k / orig) * base, +-lowpass_width), window = cos(t * pi / lowpass_width / 2)**2,
  kernel[i, k] = sinc(pi t) * window * base / orig (sinc(0) = 1);
- the signal is zero-padded by (width, width + orig); output block b (phases 0..new-1) is the kernel
  applied to padded[b * orig : b * orig + 2 * width + orig];
- the output is cropped to ceil(new * length / orig), that quotient rounded to float32 first as
  torchaudio's `torch.as_tensor` does (which matters only past 2**24 output samples).

Blocks are computed `BLOCK_ROWS` at a time into a preallocated output, so resampling a 2-hour clip
holds the input, the output and one block of scratch, never a copy of the padded signal.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99
BLOCK_ROWS = 8192  # output blocks per step: at 44.1 kHz about 3.6 M input samples, 15 MB of float32 taps view


@lru_cache(maxsize=16)
def sinc_kernel(orig_freq: int, new_freq: int) -> tuple[np.ndarray, int]:
    """The kernel [new, 2 * width + orig] (float32, rates reduced by their gcd) and `width`."""
    gcd = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // gcd, new_freq // gcd
    base_freq = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)
    idx = np.arange(-width, width + orig, dtype=np.float32)[None, :] / orig
    t = np.arange(0, -new, -1, dtype=np.float32)[:, None] / new + idx
    t *= base_freq
    t = np.clip(t, -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = np.cos(t * np.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t *= np.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(t == 0, np.float32(1.0), np.sin(t) / t)
    kernel *= window * (base_freq / orig)
    kernel = kernel.astype(np.float32)
    kernel.setflags(write=False)
    return kernel, width


def target_length(length: int, orig_freq: int, new_freq: int) -> int:
    """Output samples for `length` input samples: ceil of the float32-rounded new * length / orig."""
    gcd = math.gcd(orig_freq, new_freq)
    return int(np.ceil(np.float32(new_freq // gcd * length / (orig_freq // gcd))))


def resample(samples: np.ndarray, orig_freq: int, new_freq: int, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """1-D float32 `samples` at `orig_freq` -> float32 at `new_freq`, as torchaudio's default resample."""
    samples = np.asarray(samples, dtype=np.float32)
    if orig_freq == new_freq:
        return samples
    if orig_freq <= 0 or new_freq <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_freq} -> {new_freq}")
    kernel, width = sinc_kernel(int(orig_freq), int(new_freq))
    new, taps = kernel.shape
    orig = taps - 2 * width
    length = len(samples)
    n_blocks = length // orig + 1  # conv1d over the padded signal, stride orig
    out = np.empty(n_blocks * new, dtype=np.float32)
    taps_t = np.ascontiguousarray(kernel.T)
    for first in range(0, n_blocks, block_rows):
        rows = min(block_rows, n_blocks - first)
        start = first * orig - width  # padded[b * orig] is samples[b * orig - width]
        segment = np.zeros((rows - 1) * orig + taps, dtype=np.float32)
        lo, hi = max(start, 0), min(start + len(segment), length)
        if hi > lo:
            segment[lo - start : hi - start] = samples[lo:hi]
        frames = sliding_window_view(segment, taps)[::orig]
        np.matmul(frames, taps_t, out=out[first * new : (first + rows) * new].reshape(rows, new))
    return out[: target_length(length, orig_freq, new_freq)]  # a prefix view: at most `new` spare samples
