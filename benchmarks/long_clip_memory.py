"""Peak memory of one long clip through extraction's own steps, in multiples of its decoded float32 size.

Three blocks, each measured with `xares_llm.memory.PeakMemory` (growth above the memory in use on
entry, freed heap trimmed first) on a stereo FLAC of `--minutes` minutes at 16 kHz:

- ``decode``: bytes -> mono float32 (`decode_audio`), the decoded clip kept;
- ``encode``: the decoded clip -> stored frames through `Extractor.encode` with the built-in `mel`
  encoder (padding, mask, the encoder's forward, trimming, the store dtype);
- ``forward``: the mel encoder's forward alone on the inputs `encode_clips` gives it, the part the
  budget sets aside.

The pipeline's own copies are ``encode - forward`` and ``decode``. Writes JSON to
benchmarks/results/long_clip_memory.json. Run: ``python -m benchmarks.long_clip_memory --minutes 20``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from xares_llm.audio.decoding import decode_audio
from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import pad_batch
from xares_llm.extract.decode import DecodedWindow
from xares_llm.extract.encode import Extractor
from xares_llm.memory import PeakMemory

RESULTS = Path(__file__).parent / "results" / "long_clip_memory.json"


def stereo_flac(minutes: float) -> bytes:
    n = int(minutes * 60 * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    left = 0.3 * np.sin(2 * np.pi * 440.0 * t, dtype=np.float32)
    audio = np.stack([left, np.roll(left, 7)], axis=1)
    del t, left
    out = io.BytesIO()
    sf.write(out, audio, SAMPLE_RATE, format="FLAC")
    return out.getvalue()


def measure(minutes: float) -> dict:
    cpu = torch.device("cpu")
    data = stereo_flac(minutes)
    with PeakMemory(cpu, release_heap=True) as decode:
        audio = decode_audio(data, "long.flac")
    del data
    decoded_mb = audio.nbytes / 2**20
    loaded, info = prepare_encoder("mel", None, "cpu", "float32", "fp32")
    module = loaded.module
    window = DecodedWindow(None, keys=["long"], audio=[audio], meta=["{}"], samples=len(audio))
    extractor = Extractor(module, info, "cpu", batch_seconds=600.0)
    with PeakMemory(cpu, release_heap=True) as encode:
        buffer = extractor.encode(window, None)
    frames_mb = sum(f.nbytes for f in buffer.frames) / 2**20
    del buffer
    batch, mask = pad_batch([audio])  # the inputs encode_clips gives it
    with PeakMemory(cpu, release_heap=True) as forward, torch.inference_mode():
        out = module(batch, mask)
    del out
    return {
        "minutes": minutes,
        "decoded_mb": round(decoded_mb, 1),
        "frames_mb": round(frames_mb, 1),
        "decode_growth_mb": round(decode.growth_mb, 1),
        "encode_growth_mb": round(encode.growth_mb, 1),
        "forward_growth_mb": round(forward.growth_mb, 1),
        "pipeline_copies_x_decoded": round((decode.growth_mb + encode.growth_mb - forward.growth_mb) / decoded_mb, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = measure(args.minutes)
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
