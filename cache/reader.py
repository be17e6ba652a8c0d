"""Read a feature store split: number of clips, clip i in O(1), iteration in order.

Only complete parts are visible. Offsets, keys, meta and lengths of every part are read once at
open (small); frames are read on demand, one slice per clip, so a DataLoader worker touches only
the chunks it needs.

Damage is an error naming the part, never data: a part's metadata is read as plain JSON and checked
before zarr opens it (a part in another format, e.g. a Zarr v2 object array, could unpickle its
chunks), a missing chunk file is reported (zarr would fill it with zeros; parts are written with
every chunk present) and a failed checksum names the part and array.

A root may be an fsspec URL: cache/remote.py mirrors its files into a local folder as they are
needed, so every check here runs on local files either way; only where the bytes come from differs.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import zarr

from xares_llm.cache.chunks import (
    CHUNK_CACHE,
    READ_ERRORS,
    check_chunk_files,
    chunk_file,
    open_array,
    open_part,
    read_whole,
)
from xares_llm.cache.dtypes import INT8, dequantise_int8
from xares_llm.cache.errors import StoreFileError
from xares_llm.cache.format import SCALES, part_name, split_dir
from xares_llm.cache.metadata import complete_parts
from xares_llm.cache.remote import open_root
from xares_llm.cache.verify import offsets_problem


@dataclass
class Clip:
    key: str
    frames: np.ndarray  # (T', D) float32 for float32 and int8 stores (dequantised), float16 for float16 and bitround
    meta: dict
    n_samples: int  # audio length at 16 kHz


class FeatureSplit:
    """All complete parts of one (encoder-id, dataset, split), addressed by a global clip index.

    With `shards`, only the parts of those source shards: a task that reads some of a dataset's shards
    (a single-task preview on one test shard) never sees the others' parts.
    """

    def __init__(
        self, root: Path | str, encoder_id: str, dataset: str, split: str, shards: Sequence[str] | None = None
    ):
        root, self._files = open_root(root)  # a URL's mirror; pickled with the split, so workers share it
        self.directory = split_dir(root, encoder_id, dataset, split)
        self._files.sync_split(self.directory)
        self.parts = complete_parts(self.directory)
        if shards is not None:
            names = {part_name(shard) for shard in shards}
            self.parts = [path for path in self.parts if path.name in names]
        self._offsets: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []
        self._n_samples: list[np.ndarray] = []
        starts = [0]
        for path in self.parts:
            group = open_part(path)
            frames = check_chunk_files(path, group, "frames", self._files)  # read later, clip by clip
            self._offsets.append(read_whole(path, group, "offsets"))
            problem = offsets_problem(self._offsets[-1], frames.shape[0])  # the shapes: `complete_parts`
            if problem:
                raise StoreFileError(path, problem)
            self._keys.append(read_whole(path, group, "keys"))
            self._meta.append(read_whole(path, group, "meta"))
            self._n_samples.append(read_whole(path, group, "n_samples"))
            starts.append(starts[-1] + len(self._keys[-1]))
        self._starts = starts
        self._frames: dict[int, zarr.Array] = {}  # opened lazily, per process
        self._scales: dict[int, zarr.Array] = {}  # int8 parts: their per-frame scales, likewise
        # a part rewritten at the same path is a new directory (atomic rename): its inode tells them apart
        self._cache_ids = [f"{path}@{path.stat().st_ino}" for path in self.parts]

    def __len__(self) -> int:
        return self._starts[-1]

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} clips in {self.directory}")
        part = bisect.bisect_right(self._starts, index) - 1
        return part, index - self._starts[part]

    def _frames_array(self, part: int) -> zarr.Array:
        if part not in self._frames:
            path = self.parts[part]
            self._frames[part] = open_array(path, open_part(path), "frames")
        return self._frames[part]

    @cached_property
    def frame_counts(self) -> np.ndarray:
        """Frames per clip, (n_clips,) int64, in clip order."""
        if not self._offsets:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.diff(o) for o in self._offsets])

    def meta(self, index: int) -> dict:
        return json.loads(self.meta_text(index))

    def meta_text(self, index: int) -> str:
        """Clip `index`'s json exactly as stored (the sample's json as read from its shard)."""
        part, local = self._locate(index)
        return str(self._meta[part][local])

    def key(self, index: int) -> str:
        part, local = self._locate(index)
        return str(self._keys[part][local])

    def frames(self, index: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames [start:stop) of clip `index`, (T', D).

        Reads whole chunks and keeps them decoded in the process-wide `CHUNK_CACHE`: a chunk holds
        many clips, so neighbouring reads (evaluation order, bucketed training) decompress it once.
        """
        part, local = self._locate(index)
        begin, end = (int(v) for v in self._offsets[part][local : local + 2])
        stop = end - begin if stop is None else min(stop, end - begin)
        array = self._frames_array(part)
        if stop <= start:
            return np.zeros((0, array.shape[1]), dtype=np.float32 if array.dtype == INT8 else array.dtype)
        first, last = begin + start, begin + stop
        rows = array.chunks[0]
        pieces = [self._chunk(part, c) for c in range(first // rows, (last - 1) // rows + 1)]
        joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        offset = (first // rows) * rows
        return joined[first - offset : last - offset]

    def _chunk(self, part: int, chunk: int) -> np.ndarray:
        key = (self._cache_ids[part], chunk)
        cached = CHUNK_CACHE.get(key)
        if cached is not None:
            return cached
        array = self._frames_array(part)
        rows = array.chunks[0]
        path = self.parts[part]
        stored = chunk_file((chunk * rows // (array.shards or array.chunks)[0], 0))
        if not self._files.fetch(path / "frames" / stored):  # zarr would return zeros for it
            raise StoreFileError(path, f"frames: chunk file {stored} is missing")
        try:
            data = array[chunk * rows : (chunk + 1) * rows]
        except READ_ERRORS as e:
            raise StoreFileError(path, f"frames: cannot read ({e})") from e
        if data.dtype == INT8:
            data = dequantise_int8(data, self._scale_rows(part, chunk * rows, (chunk + 1) * rows))
        CHUNK_CACHE.put(key, data)
        return data

    def _scale_rows(self, part: int, begin: int, end: int) -> np.ndarray:
        """Scales [begin:end) of an int8 part: one chunk, aligned with the frames chunk (writer.py)."""
        path = self.parts[part]
        if part not in self._scales:
            self._scales[part] = check_chunk_files(path, open_part(path), SCALES)
        try:
            return self._scales[part][begin:end]
        except READ_ERRORS as e:
            raise StoreFileError(path, f"{SCALES}: cannot read ({e})") from e

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
        return {**self.__dict__, "_frames": {}, "_scales": {}}
