"""A long clip through extraction: the features of the memory-saving paths equal the padded batch's, and the
pipeline's own copies stay within a few times the decoded clip (the encoder's forward aside)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from benchmarks.long_clip_memory import stereo_flac
from xares_llm.audio.decoding import decode_audio
from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders.encoding import encode_clips, pad_batch
from xares_llm.encoders.mel import MelEncoder


def test_decoding_block_by_block_equals_reading_at_once():
    data = stereo_flac(0.2)
    whole, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE
    np.testing.assert_array_equal(decode_audio(data, "x.flac"), whole.mean(axis=1))


def test_a_clip_alone_encodes_as_in_a_padded_batch():
    rng = np.random.default_rng(0)
    clip, short = (rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (48_000, 16_000))
    audio, mask = pad_batch([clip])
    assert audio.data_ptr() == torch.from_numpy(clip).data_ptr() and mask.stride() == (1, 0)  # no copies
    encoder = MelEncoder()
    alone = encode_clips(encoder, [clip])[0]
    batched = encode_clips(encoder, [clip, short])[0]
    torch.testing.assert_close(alone, batched, rtol=0, atol=0)


def test_a_long_clips_own_copies_stay_within_three_times_its_decoded_size(tmp_path):
    """5 minutes of stereo: decoding used 4x the decoded clip and encoding 4x besides the encoder's forward.

    Measured in a fresh process: what earlier tests left in this one's heap would blur the growth.
    """
    out = tmp_path / "memory.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "benchmarks.long_clip_memory", "--minutes", "5", "--out", str(out)]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300, cwd=Path(__file__).parents[1])
    result = json.loads(out.read_text())
    assert result["decode_growth_mb"] <= 1.5 * result["decoded_mb"], result
    assert result["pipeline_copies_x_decoded"] <= 3.0, result
