"""The reference's resampler (torchaudio's `sinc_interp_hann`, width 6, rolloff 0.99) in numpy.

Expected outputs come from a second, plain implementation here: the interpolation formula summed
directly per output sample in float64, with the tap positions t rounded to float32 as torchaudio
computes them for a float32 waveform (its kernel is built in the waveform's dtype). Kernel shapes,
widths, a few kernel values and lengths are hard-coded from torchaudio's
`_get_sinc_resample_kernel` / `_apply_sinc_resample_kernel` worked by hand.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf

from xares_llm.audio.decoding import decode_audio
from xares_llm.audio.resample import resample, sinc_kernel, target_length

RATES = (8000, 11025, 22050, 24000, 32000, 44100, 48000)


def direct(x: np.ndarray, orig_freq: int, new_freq: int) -> np.ndarray:
    """y[j] = sum_i x[i] sinc(t) hann(t) base / orig, t = (i / orig - j / new) * base, |t| <= 6."""
    g = math.gcd(orig_freq, new_freq)
    orig, new = orig_freq // g, new_freq // g
    base = min(orig, new) * 0.99
    width = math.ceil(6 * orig / base)
    out = np.zeros(math.ceil(new * len(x) / orig))
    for j in range(len(out)):
        block, phase = divmod(j, new)
        lo, hi = max(block * orig - width, 0), min(block * orig + width + orig, len(x))
        offsets = np.arange(lo, hi) - block * orig  # i / orig - j / new = offset / orig - phase / new
        t = (np.float32(-phase) / np.float32(new) + offsets.astype(np.float32) / np.float32(orig)) * np.float32(base)
        t = np.clip(t.astype(np.float64), -6, 6)
        out[j] = np.dot(x[lo:hi].astype(np.float64), np.sinc(t) * np.cos(t * np.pi / 12) ** 2 * base / orig)
    return out


@pytest.mark.parametrize("rate", RATES)
def test_output_matches_the_interpolation_formula(rate):
    rng = np.random.default_rng(rate)
    x = rng.uniform(-1, 1, rate // 10 + 7).astype(np.float32)  # not a whole number of blocks
    y = resample(x, rate, 16000)
    assert y.dtype == np.float32 and len(y) == math.ceil(16000 * len(x) / rate)
    assert np.max(np.abs(y - direct(x, rate, 16000))) < 1e-6


def test_kernel_shape_width_and_values():
    """orig/new reduced by the gcd; width = ceil(6 orig / (0.99 min(orig, new))); taps 2 width + orig."""
    expected = {44100: (160, 17, 475), 22050: (320, 9, 459), 48000: (1, 19, 41), 32000: (1, 13, 28), 8000: (2, 7, 15)}
    for rate, (new, width, taps) in expected.items():
        kernel, w = sinc_kernel(rate, 16000)
        assert (kernel.shape, w, kernel.dtype) == ((new, taps), width, np.float32)
    kernel, width = sinc_kernel(32000, 16000)  # orig 2, new 1, base 0.99, scale 0.495
    assert kernel[0, width] == pytest.approx(0.495, abs=1e-7)  # t = 0: sinc 1, window 1
    # tap width + 1: t = 0.5 * 0.99 = 0.495, sinc = sin(0.495 pi) / (0.495 pi), window = cos(0.495 pi / 12)^2
    assert kernel[0, width + 1] == pytest.approx(0.64297094 * 0.98330005 * 0.495, abs=1e-6)
    assert kernel[0, 0] == pytest.approx(0.0, abs=1e-12)  # t = -6.435 clamps to -6: the window is 0
    kernel, width = sinc_kernel(44100, 16000)
    assert kernel[0, width] == pytest.approx(160 * 0.99 / 441, abs=1e-7)  # 0.35918367
    assert np.sum(kernel[0]) == pytest.approx(1.0, abs=2e-3)  # a lowpass passes DC


def test_lengths_round_through_float32_as_torchaudio_does():
    assert target_length(44100, 44100, 16000) == 16000
    assert target_length(1, 44100, 16000) == 1 and target_length(0, 44100, 16000) == 0
    assert target_length(22051, 22050, 16000) == 16001  # ceil(16000.7)
    # 2 h 24 min at 44.1 kHz: 160 * L / 441 = 41795918.37 rounds in float32 to 41795920, not ceil = 41795919
    assert target_length(115_200_000, 44100, 16000) == 41_795_920
    assert len(resample(np.zeros(0, np.float32), 44100, 16000)) == 0


def test_blocks_give_the_same_output_as_one_pass():
    x = np.random.default_rng(1).standard_normal(44100 * 3 + 123).astype(np.float32)
    whole = resample(x, 44100, 16000, block_rows=10**9)
    for rows in (1, 7, 100):  # BLAS may sum a block's taps in another order: float32 rounding only
        np.testing.assert_allclose(resample(x, 44100, 16000, block_rows=rows), whole, rtol=0, atol=1e-6)


def test_equal_rates_pass_through_and_a_tone_survives():
    x = np.random.default_rng(2).standard_normal(100).astype(np.float32)
    assert resample(x, 16000, 16000) is x
    t = np.arange(48000) / 48000
    y = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 48000, 16000)
    expected = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.max(np.abs(y - expected)[100:-100]) < 2e-3  # 1 kHz is far below the cut-off


def test_peak_is_normalised_before_resampling_as_the_reference_does():
    """A 0.999-peak square wave keeps its scale; the resampler's overshoot above 1 stays in the clip."""
    t = np.arange(44100) / 44100
    square = (0.999 * np.sign(np.sin(2 * np.pi * 441 * t))).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, square, 44100, format="WAV", subtype="FLOAT")
    decoded = decode_audio(buffer.getvalue(), "square.wav")
    np.testing.assert_array_equal(decoded, resample(square, 44100, 16000))
    assert decoded.max() > 1.05  # Gibbs overshoot, not rescaled
    loud = square * 3  # peak 2.997: divided by it first, then resampled
    buffer = io.BytesIO()
    sf.write(buffer, loud, 44100, format="WAV", subtype="FLOAT")
    expected = resample(loud / np.float32(np.abs(loud).max()), 44100, 16000)
    np.testing.assert_allclose(decode_audio(buffer.getvalue(), "loud.wav"), expected, atol=1e-7)


def test_memory_is_the_output_and_one_block_whatever_the_clip_length():
    """A 10-minute 44.1 kHz clip (106 MB): no padded copy of it, only the output and one block of scratch."""
    import tracemalloc

    x = np.zeros(44100 * 600, dtype=np.float32)
    resample(x[:1000], 44100, 16000)  # the kernel is cached: not counted below
    tracemalloc.start()
    try:
        y = resample(x, 44100, 16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < y.nbytes + 40e6 < x.nbytes  # scratch: 8192 blocks of 475 taps, about 31 MB


def test_soxr_is_an_option_with_its_own_encoder_id():
    import json

    from xares_llm.cache import EncoderInfo
    from xares_llm.encoders.describe import prepare_encoder
    from xares_llm.errors import EncoderError

    _, sinc = prepare_encoder("mel", None, "cpu", "float16")
    _, soxr = prepare_encoder("mel", None, "cpu", "float16", resampler="soxr")
    assert (sinc.resampler, soxr.resampler) == ("sinc", "soxr") and sinc.encoder_id != soxr.encoder_id
    old = json.loads(sinc.to_json())
    del old["resampler"]  # encoder.json from before the choice existed: those stores used soxr
    assert EncoderInfo.from_json(json.dumps(old)).resampler == "soxr"
    with pytest.raises(EncoderError, match=r"^--resampler must be one of sinc, soxr .*got 'linear'$"):
        prepare_encoder("mel", None, "cpu", "float16", resampler="linear")
