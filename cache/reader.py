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
    missing_grid_files,
    open_array,
    open_part,
    read_whole,
)
from xares_llm.cache.dtypes import INT8, dequantise_int8
from xares_llm.cache.errors import StoreFileError
from xares_llm.cache.format import SCALES, part_name, split_dir
from xares_llm.cache.index_read import chunk_grid_counts, read_index_array
from xares_llm.cache.metadata import complete_part_attrs
from xares_llm.cache.remote import open_root
from xares_llm.cache.verify import offsets_problem

INDEX_ARRAYS = ("offsets", "keys", "meta", "n_samples")


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
        found = complete_part_attrs(self.directory)
        if shards is not None:
            names = {part_name(shard) for shard in shards}
            found = [(path, attrs) for path, attrs in found if path.name in names]
        self.parts = [path for path, _ in found]
        self.part_attrs = [attrs for _, attrs in found]  # as read at open: counts, source, dropped clips
        self._offsets: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []
        self._n_samples: list[np.ndarray] = []
        starts = [0]
        for path, attrs in found:
            offsets, keys, meta, n_samples = self._read_index(path, attrs.n_frames)
            self._offsets.append(offsets)
            self._keys.append(keys)
            self._meta.append(meta)
            self._n_samples.append(n_samples)
            starts.append(starts[-1] + len(keys))
        self._starts = starts
        self._frames: dict[int, zarr.Array] = {}  # opened lazily, per process
        self._scales: dict[int, zarr.Array] = {}  # int8 parts: their per-frame scales, likewise
        # a part rewritten at the same path is a new directory (atomic rename): its inode tells them apart
        self._cache_ids = [f"{path}@{path.stat().st_ino}" for path in self.parts]

    def _read_index(self, path: Path, n_frames: int) -> list[np.ndarray]:
        """offsets, keys, meta, n_samples of one part, its frames' chunk files checked present and its
        offsets checked as an index of its frames (as `xares cache verify` checks them).

        The writer's layout is read directly (cache/index_read.py, 10x faster than through zarr:
        what makes a thousand-part store open in seconds); anything else goes through zarr."""
        arrays = [read_index_array(path, name) for name in INDEX_ARRAYS]
        counts = chunk_grid_counts(path, "frames")
        if counts is None or any(a is None for a in arrays):
            group = open_part(path)
            n_frames = check_chunk_files(path, group, "frames", self._files).shape[0]
            arrays = [read_whole(path, group, name) for name in INDEX_ARRAYS]
        else:  # read later, clip by clip: zarr would fill a missing chunk with zeros
            count, first = missing_grid_files(counts, path / "frames", self._files)
            if count:
                raise StoreFileError(path, f"frames: {count} chunk files missing ({', '.join(first)})")
        problem = offsets_problem(arrays[0], n_frames)  # n_frames: the frames' shape, `complete_part_attrs`
        if problem:
            raise StoreFileError(path, problem)
        return arrays

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

    def iter_meta(self) -> Iterator[dict]:
        """Every clip's meta in clip order, part by part (no per-clip lookup: a store has a million)."""
        return (json.loads(text) for text in self.iter_meta_text())

    def iter_meta_text(self) -> Iterator[str]:
        """Every clip's json exactly as stored, in clip order, part by part."""
        for metas in self._meta:
            for text in metas:
                yield str(text)

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
