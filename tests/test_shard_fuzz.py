"""Shards from elsewhere, mutated at random: every sample is decoded or dropped with a one-line reason, a
damaged shard is one `ShardDamage`, nothing else escapes, nothing warns, no reason carries a memory address."""

from __future__ import annotations

import io
import random
import re
import warnings

import numpy as np
import pytest
import soundfile as sf
from faults import clips, tar_bytes

from xares_llm.audio.decoding import decode_audio
from xares_llm.audio.shards import ShardDamage, read_samples
from xares_llm.cache.format import SourceInfo
from xares_llm.errors import DataError
from xares_llm.extract.decode import DecodedWindow, add_sample

ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


def decode_all(path) -> DecodedWindow:
    window = DecodedWindow(SourceInfo("s.tar", 0, "", 0))
    try:
        for sample in read_samples(path):
            add_sample(window, sample, ["label"])
    except ShardDamage as damage:
        window.damage = damage.reason
    return window


def check(window: DecodedWindow) -> None:
    for entry in window.dropped:
        text = f"{entry['reason']}: {entry.get('detail', '')}"
        assert "\n" not in text and len(text) < 1000 and not ADDRESS.search(text), text
    assert "\n" not in window.damage and not ADDRESS.search(window.damage)
    for audio in window.audio:
        assert audio.dtype == np.float32 and np.isfinite(audio).all()


def test_fuzz_shards(tmp_path):
    rng = random.Random(7)
    raw = tar_bytes(clips(3))
    path = tmp_path / "s.tar"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(60):
            data = bytearray(raw)
            for _ in range(rng.randrange(1, 6)):
                at = rng.randrange(len(data))
                if rng.random() < 0.7:
                    data[at] = rng.randrange(256)
                else:
                    del data[at : at + rng.randrange(1, 600)]
            path.write_bytes(bytes(data))
            check(decode_all(path))


def wav(audio: np.ndarray, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="FLOAT")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"garbage", "Format not recognised"),
        (wav(np.array([0.1, np.inf, 0.2] * 100, dtype=np.float32)), "NaN or Inf samples"),
        (wav(np.zeros(4000, dtype=np.float32), rate=10), "sample rate 10 Hz, below 1000 Hz"),
    ],
)
def test_bad_audio_is_one_clean_line(data, reason):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError, match=reason) as raised:
            decode_audio(data, "k.wav")
    assert not ADDRESS.search(str(raised.value)) and "BytesIO" not in str(raised.value)
