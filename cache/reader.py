"""Read a feature store split: number of clips, clip i in O(1), iteration in order.

Only complete parts are visible. Offsets, keys, meta and lengths of every part are read once at
open (small); frames are read on demand, one slice per clip, so a DataLoader worker touches only
the chunks it needs.
"""

from __future__ import annotations

import bisect
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import zarr

from xares_llm.cache.format import (
    ENCODER_FILE,
    PART_SUFFIX,
    STATUS_COMPLETE,
    TMP_MARKER,
    EncoderInfo,
    PartAttrs,
    encoder_dir,
    features_root,
    split_dir,
)

CHUNK_CACHE_BYTES = 256 << 20  # decoded frame chunks kept per process (LRU)


@dataclass
class Clip:
    key: str
    frames: np.ndarray  # (T', D) in the store's dtype
    meta: dict
    n_samples: int  # audio length at 16 kHz


def list_encoders(root: Path) -> list[EncoderInfo]:
    """Every encoder store under `root`, newest format first in name order."""
    base = features_root(root)
    if not base.is_dir():
        return []
    infos = []
    for directory in sorted(base.iterdir()):
        path = directory / ENCODER_FILE
        if path.is_file():
            infos.append(EncoderInfo.from_json(path.read_text()))
    return infos


def read_encoder_info(root: Path, encoder_id: str) -> EncoderInfo | None:
    path = encoder_dir(root, encoder_id) / ENCODER_FILE
    return EncoderInfo.from_json(path.read_text()) if path.is_file() else None


def complete_parts(directory: Path) -> list[Path]:
    """Complete part groups in `directory`, sorted by name (the source shard order)."""
    if not directory.is_dir():
        return []
    parts = []
    for path in sorted(directory.iterdir()):
        if not path.name.endswith(PART_SUFFIX) or TMP_MARKER in path.name:
            continue
        if read_part_attrs(path) is not None:
            parts.append(path)
    return parts


def read_part_attrs(path: Path) -> PartAttrs | None:
    """The attrs of a complete part, or None when it is missing or unfinished."""
    try:
        attrs = dict(zarr.open_group(path, mode="r").attrs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, ValueError):
        return None
    if attrs.get("status") != STATUS_COMPLETE:
        return None
    return PartAttrs.from_dict(attrs)


class FeatureSplit:
    """All complete parts of one (encoder-id, dataset, split), addressed by a global clip index."""

    def __init__(self, root: Path, encoder_id: str, dataset: str, split: str):
        self.directory = split_dir(root, encoder_id, dataset, split)
        self.parts = complete_parts(self.directory)
        self._offsets: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []
        self._n_samples: list[np.ndarray] = []
        starts = [0]
        for path in self.parts:
            group = zarr.open_group(path, mode="r")
            self._offsets.append(group["offsets"][:])
            self._keys.append(group["keys"][:])
            self._meta.append(group["meta"][:])
            self._n_samples.append(group["n_samples"][:])
            starts.append(starts[-1] + len(self._keys[-1]))
        self._starts = starts
        self._frames: dict[int, zarr.Array] = {}  # opened lazily, per process
        self._chunks: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._chunk_bytes = 0

    def __len__(self) -> int:
        return self._starts[-1]

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} clips in {self.directory}")
        part = bisect.bisect_right(self._starts, index) - 1
        return part, index - self._starts[part]

    def _frames_array(self, part: int) -> zarr.Array:
        if part not in self._frames:
            self._frames[part] = zarr.open_group(self.parts[part], mode="r")["frames"]
        return self._frames[part]

    @cached_property
    def frame_counts(self) -> np.ndarray:
        """Frames per clip, (n_clips,) int64, in clip order."""
        if not self._offsets:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.diff(o) for o in self._offsets])

    def meta(self, index: int) -> dict:
        part, local = self._locate(index)
        return json.loads(self._meta[part][local])

    def key(self, index: int) -> str:
        part, local = self._locate(index)
        return str(self._keys[part][local])

    def frames(self, index: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames [start:stop) of clip `index`, (T', D).

        Reads whole chunks and keeps them decoded in a small LRU cache: a chunk holds many clips,
        so neighbouring reads (evaluation order, bucketed training) decompress it once.
        """
        part, local = self._locate(index)
        begin, end = (int(v) for v in self._offsets[part][local : local + 2])
        stop = end - begin if stop is None else min(stop, end - begin)
        array = self._frames_array(part)
        if stop <= start:
            return np.zeros((0, array.shape[1]), dtype=array.dtype)
        first, last = begin + start, begin + stop
        rows = array.chunks[0]
        pieces = [self._chunk(part, c) for c in range(first // rows, (last - 1) // rows + 1)]
        joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        offset = (first // rows) * rows
        return joined[first - offset : last - offset]

    def _chunk(self, part: int, chunk: int) -> np.ndarray:
        key = (part, chunk)
        if key in self._chunks:
            self._chunks.move_to_end(key)
            return self._chunks[key]
        array = self._frames_array(part)
        rows = array.chunks[0]
        data = array[chunk * rows : (chunk + 1) * rows]
        self._chunks[key] = data
        self._chunk_bytes += data.nbytes
        while self._chunk_bytes > CHUNK_CACHE_BYTES and len(self._chunks) > 1:
            _, evicted = self._chunks.popitem(last=False)
            self._chunk_bytes -= evicted.nbytes
        return data

    def __getitem__(self, index: int) -> Clip:
        part, local = self._locate(index)
        return Clip(
            key=str(self._keys[part][local]),
            frames=self.frames(index),
            meta=json.loads(self._meta[part][local]),
            n_samples=int(self._n_samples[part][local]),
        )

    def __iter__(self) -> Iterator[Clip]:
        for index in range(len(self)):
            yield self[index]

    def __getstate__(self) -> dict:
        # zarr handles are reopened in each DataLoader worker rather than pickled.
        return {**self.__dict__, "_frames": {}, "_chunks": OrderedDict(), "_chunk_bytes": 0}
