"""Encode decoded windows with the loaded encoder: length-sorted padded batches, retried clip by clip on failure."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np
import torch

from xares_llm.cache import EncoderInfo, PartBuffer
from xares_llm.cache.dtypes import held_dtype
from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders.encoding import AUTOCAST_DTYPES, encode_clips, padded_input_samples
from xares_llm.encoders.loader import raised_at
from xares_llm.errors import EncoderError
from xares_llm.extract.decode import DecodedWindow, DropReason, dropped
from xares_llm.extract.report import ExtractProgress


def length_batches(lengths: list[int], batch_seconds: float, padded_samples: int | None = None) -> Iterator[list[int]]:
    """Indices sorted by length (longest first), grouped so that each batch's padded input fits `batch_seconds`.

    Batches pad to their longest clip: batch size x longest <= batch_seconds. An encoder that pads
    every window to its maximum input (`padded_samples`, Whisper's 30 s) costs that much per window
    whatever the clip's length, so there a batch's windows x `padded_samples` fit instead. A batch
    always holds at least one clip.
    """
    budget = batch_seconds * SAMPLE_RATE
    batch: list[int] = []
    cost = 0
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        step = max(1, math.ceil(lengths[index] / padded_samples)) * padded_samples if padded_samples else 0
        grown = cost + step if padded_samples else (len(batch) + 1) * lengths[batch[0] if batch else index]
        if batch and grown > budget:
            yield batch
            batch, grown = [], step or lengths[index]
        batch.append(index)
        cost = grown
    if batch:
        yield batch


class Extractor:
    """Encodes decoded windows into part buffers with one loaded encoder."""

    def __init__(self, module: torch.nn.Module, info: EncoderInfo, device: str, batch_seconds: float):
        self.module, self.info, self.device, self.batch_seconds = module, info, device, batch_seconds
        # fp32 unless encoder.json says otherwise: autocast is an explicit choice, never implied by the store dtype
        self.autocast_dtype = AUTOCAST_DTYPES[info.encoder_precision]
        self.padded_samples = padded_input_samples(module, info.spec)
        self.encode_s = 0.0  # seconds spent encoding, over every window

    def encode(
        self, window: DecodedWindow, progress: ExtractProgress | None, keep_nonfinite: bool = False
    ) -> PartBuffer:
        """Encode every clip of `window`, kept clips in source order; a clip whose features hold NaN/Inf
        (in the stored dtype) is dropped as ``nonfinite`` unless `keep_nonfinite`. The buffer's
        ``dropped`` lists only what the encoder lost (the window's own ``dropped`` stay there)."""
        started = time.perf_counter()
        buffer = PartBuffer(dim=self.info.output_dim, dtype=self.info.dtype, device=self.device)
        features: dict[int, np.ndarray] = {}
        failed: dict[int, tuple[DropReason, str]] = {}
        lengths = [len(a) for a in window.audio]
        for batch in length_batches(lengths, self.batch_seconds, self.padded_samples):
            for index, result in zip(batch, self._encode_batch([window.audio[i] for i in batch]), strict=True):
                if isinstance(result, str):
                    failed[index] = (DropReason.ENCODER, result)
                    continue
                stored = self._stored(result, window.keys[index])
                bad = int((~np.isfinite(stored)).any(axis=1).sum()) if stored.size else 0
                if bad and not keep_nonfinite:
                    where = "" if np.isfinite(result).all() else " (as computed)"
                    failed[index] = (DropReason.NONFINITE, f"{bad} of {len(stored)} frames hold NaN or Inf{where}")
                else:
                    features[index] = stored
            if progress:
                progress.advance(len(batch), sum(lengths[i] for i in batch) / SAMPLE_RATE)
        for index, key in enumerate(window.keys):  # source order, whatever order we encoded in
            if index in failed:
                buffer.dropped.append(dropped(key, *failed[index], meta=window.meta[index]))
            else:
                buffer.add(key, features[index], window.meta[index], lengths[index])
        self.encode_s += time.perf_counter() - started
        return buffer

    def _stored(self, frames: np.ndarray, key: str) -> np.ndarray:
        """The frames as the part writer takes them (held_dtype); a wrong shape breaks the encoder contract."""
        if frames.ndim != 2 or frames.shape[1] != self.info.output_dim:
            raise EncoderError(
                f"encoder {self.info.spec!r} returned frames of shape {tuple(frames.shape)} for clip {key}; "
                f"its output_dim is {self.info.output_dim}, so (T', {self.info.output_dim}) was expected"
            )
        with np.errstate(over="ignore"):  # a value beyond float16 becomes inf, which encode() counts
            return frames.astype(held_dtype(self.info.dtype), copy=False)

    def _encode_batch(self, clips: list[np.ndarray]) -> list[np.ndarray | str]:
        """Encode a batch; on a RuntimeError (out-of-memory included), retry clip by clip so one bad
        clip costs only itself. Any other exception is a bug of the encoder: `EncoderError`."""
        try:
            return [f.numpy() for f in encode_clips(self.module, clips, self.device, self.autocast_dtype)]
        except RuntimeError as e:
            if len(clips) == 1:
                return [f"{type(e).__name__}: {first_line(e)}"]
            if torch.device(self.device).type == "cuda":
                torch.cuda.empty_cache()
            return [result for clip in clips for result in self._encode_batch([clip])]
        except Exception as e:
            raise encoder_failure(e, self.module, self.info.spec) from e


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def encoder_failure(error: BaseException, module: torch.nn.Module, spec: str) -> EncoderError:
    """One line naming the exception and where it was raised: the innermost frame in the encoder's
    own file, else the innermost frame of all."""
    at = raised_at(error, type(module))
    message = first_line(error)
    return EncoderError(
        f"encoder {spec!r} raised {type(error).__name__}{': ' + message if message else ''}{at}; "
        "fix the encoder and rerun (parts already written are kept)"
    )
