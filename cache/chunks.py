"""Reading a part's arrays from local files: whole small arrays, frame chunks, and the process-wide chunk LRU.

A missing chunk file is reported (zarr would fill it with zeros; parts are written with every chunk
present) and a failed checksum names the part and array.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import zarr

from xares_llm.cache.dtypes import quiet_numcodecs
from xares_llm.cache.errors import StoreFileError
from xares_llm.cache.remote import LOCAL, LocalFiles

CHUNK_CACHE_BYTES = 256 << 20  # decoded frame chunks kept per process, over all open splits (LRU)
SHOWN_MISSING = 3  # missing chunk files an error names
# what zarr raises on metadata it cannot parse (a value of the wrong JSON type, an unknown name)
METADATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError)
READ_ERRORS = (ValueError, RuntimeError, OSError)  # zarr and codec errors (a crc32c mismatch is a ValueError)


def open_part(path: Path) -> zarr.Group:
    """The part's group, opened as Zarr v3 only (its metadata was checked by `part_metadata`)."""
    quiet_numcodecs()
    try:
        return zarr.open_group(path, mode="r", zarr_format=3)
    except METADATA_ERRORS as e:
        raise StoreFileError(path, f"zarr cannot open it ({type(e).__name__}: {first_line(e)})") from e


def open_array(part: Path, group: zarr.Group, name: str) -> zarr.Array:
    """Array `name` of an open part; metadata zarr refuses is an error naming the part and array."""
    try:
        return group[name]
    except METADATA_ERRORS as e:
        raise StoreFileError(part, f"{name}: zarr cannot open it ({type(e).__name__}: {first_line(e)})") from e


def first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else ""


def chunk_file(index: tuple[int, ...]) -> Path:
    """The file holding chunk (or shard) `index` of an array, relative to the array's folder."""
    return Path("c", *(str(i) for i in index))


def chunk_counts(array: zarr.Array) -> list[int]:
    """Chunk (or shard) files along each axis the array's shape calls for."""
    grid = array.shards or array.chunks
    return [max(1, math.ceil(size / step)) if size else 0 for size, step in zip(array.shape, grid, strict=True)]


def missing_chunk_files(array: zarr.Array, directory: Path, files: LocalFiles = LOCAL) -> tuple[int, list[str]]:
    """How many chunk (or shard) files the array's shape calls for that the store does not hold, and the first few."""
    return missing_grid_files(chunk_counts(array), directory, files)


def missing_grid_files(counts: list[int], directory: Path, files: LocalFiles = LOCAL) -> tuple[int, list[str]]:
    """`missing_chunk_files` for a grid of `counts` chunk files along each axis.

    The claim is looked at no further than the files there allow: a shape calling for billions of
    chunks costs a listing of the files the store really holds, not a loop over the claim.
    """
    claimed, held = math.prod(counts), files.count(directory / "c")
    looked = min(claimed, held + SHOWN_MISSING)
    names = (str(chunk_file(i)) for i in itertools.islice(np.ndindex(*counts), looked))
    missing = [name for name in names if not files.present(directory / name)]
    return (len(missing) if looked == claimed else claimed - held), missing[:SHOWN_MISSING]


def check_chunk_files(part: Path, group: zarr.Group, name: str, files: LocalFiles = LOCAL) -> zarr.Array:
    """Array `name` of `part`, or `StoreFileError` when a chunk file is missing (zarr would read zeros)."""
    array = open_array(part, group, name)
    count, first = missing_chunk_files(array, part / name, files)
    if count:
        raise StoreFileError(part, f"{name}: {count} chunk files missing ({', '.join(first)})")
    return array


def read_whole(part: Path, group: zarr.Group, name: str) -> np.ndarray:
    """All of one array, or `StoreFileError` naming the part and array for a missing chunk file or bad checksum."""
    array = check_chunk_files(part, group, name)
    try:
        return array[:]
    except READ_ERRORS as e:
        raise StoreFileError(part, f"{name}: cannot read ({e})") from e


class ChunkCache:
    """Decoded frame chunks, least recently used evicted first, within `limit_bytes` for the whole process.

    One instance serves every `FeatureSplit`, so a 15-task mixture holds at most the limit, not the
    limit per split (each DataLoader worker is its own process, with its own cache).
    """

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self.bytes = 0
        self._chunks: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()

    def get(self, key: tuple[str, int]) -> np.ndarray | None:
        data = self._chunks.get(key)
        if data is not None:
            self._chunks.move_to_end(key)
        return data

    def put(self, key: tuple[str, int], data: np.ndarray) -> None:
        self._chunks[key] = data
        self.bytes += data.nbytes
        while self.bytes > self.limit_bytes and len(self._chunks) > 1:
            _, evicted = self._chunks.popitem(last=False)
            self.bytes -= evicted.nbytes


CHUNK_CACHE = ChunkCache(CHUNK_CACHE_BYTES)
