"""`decode_audio` on every format this soundfile can write, at common rates, mono and stereo.

The expected 16 kHz signal is computed analytically (sines sampled at 16 kHz), not by resampling,
so the check covers soundfile's decoding, the channel mean and soxr together.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from xares_llm.audio.decoding import decode_audio
from xares_llm.constants import SAMPLE_RATE
from xares_llm.errors import DataError

SECONDS = 1.0
RATES = (8000, 22050, 44100, 48000)
# extension -> (soundfile format, subtype, lossy, sample rates the codec accepts or None for all)
FORMATS = {
    "wav": ("WAV", "PCM_16", False, None),
    "flac": ("FLAC", "PCM_16", False, None),
    "ogg": ("OGG", "VORBIS", True, None),
    "opus": ("OGG", "OPUS", True, {8000, 12000, 16000, 24000, 48000}),  # libopus' own rates
    "mp3": ("MP3", "MPEG_LAYER_III", True, None),
}
EDGE = 320  # samples at 16 kHz (20 ms) left out at each end: resampler and codec edge effects


def tones(rate: int, freqs: tuple[float, ...]) -> np.ndarray:
    """Sum of sines of amplitude 0.3, `SECONDS` long at `rate` Hz."""
    t = np.arange(round(SECONDS * rate)) / rate
    return sum(0.3 * np.sin(2 * np.pi * f * t) for f in freqs)


def encode(samples: np.ndarray, rate: int, ext: str) -> bytes:
    fmt, subtype, _, _ = FORMATS[ext]
    available = sf.available_formats()
    if fmt not in available or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {ext} ({fmt}/{subtype})")
    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


CASES = [
    (ext, rate, channels)
    for ext, (_, _, _, rates) in FORMATS.items()
    for rate in RATES
    if rates is None or rate in rates
    for channels in (1, 2)
]


@pytest.mark.parametrize(("ext", "rate", "channels"), CASES)
def test_decode_to_mono_16k(ext: str, rate: int, channels: int) -> None:
    signal = (440.0, 1234.0)
    if channels == 1:
        samples = tones(rate, signal)
    else:  # left = s + d, right = s - d: the channel mean is s, so d must vanish
        side = tones(rate, (2000.0,))
        samples = np.stack([tones(rate, signal) + side, tones(rate, signal) - side], axis=1)
    decoded = decode_audio(encode(samples, rate, ext), f"clip.{ext}")

    assert decoded.dtype == np.float32 and decoded.ndim == 1
    expected = tones(SAMPLE_RATE, signal)
    lossy = FORMATS[ext][2]
    assert len(decoded) == len(expected)
    a, b = decoded[EDGE:-EDGE], expected[EDGE:-EDGE]
    correlation = float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))
    # A leftover side tone would bring the correlation down to about 0.82.
    assert correlation > (0.99 if lossy else 0.9999), correlation
    if not lossy:
        assert np.max(np.abs(a - b)) < 2e-3


def test_peak_above_one_is_normalised_and_below_is_kept() -> None:
    loud = tones(SAMPLE_RATE, (440.0,)) * 10  # peak 3.0, stored as float WAV so nothing clips
    buffer = io.BytesIO()
    sf.write(buffer, loud.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="FLOAT")
    decoded = decode_audio(buffer.getvalue(), "loud.wav")
    assert np.max(np.abs(decoded)) == pytest.approx(1.0)
    assert np.allclose(decoded, loud / np.max(np.abs(loud)), atol=1e-6)

    quiet = tones(SAMPLE_RATE, (440.0,))  # peak 0.3
    buffer = io.BytesIO()
    sf.write(buffer, quiet.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="FLOAT")
    assert np.allclose(decode_audio(buffer.getvalue(), "quiet.wav"), quiet, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("sample_17.m4a", b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(200), "m4a"),
        ("sample_18.flac", b"definitely not audio" * 10, "flac"),
        ("sample_19.wav", b"", "wav"),
        ("no_extension", b"\x01\x02\x03", "unknown"),
    ],
)
def test_unreadable_clip_is_a_data_error_naming_clip_and_format(name: str, data: bytes, fmt: str) -> None:
    with pytest.raises(DataError) as info:
        decode_audio(data, name)
    assert name in str(info.value) and f"format {fmt!r}" in str(info.value)
