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
import math
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import zarr

from xares_llm.cache.dtypes import BITROUND_BITS, INT8, dequantise_int8, quiet_numcodecs
from xares_llm.cache.errors import StoreFileError
from xares_llm.cache.format import (
    ENCODER_FILE,
    FORMAT,
    PART_SUFFIX,
    SCALES,
    STATUS_COMPLETE,
    TMP_MARKER,
    EncoderInfo,
    PartAttrs,
    encoder_dir,
    features_root,
    part_arrays,
    split_dir,
)
from xares_llm.cache.remote import LOCAL, LocalFiles, open_root

CHUNK_CACHE_BYTES = 256 << 20  # decoded frame chunks kept per process, over all open splits (LRU)
ZARR_JSON = "zarr.json"
ZARR_V2_FILES = (".zgroup", ".zarray", ".zattrs")
WRITTEN_CODECS = frozenset({"bytes", "zstd", "crc32c", "vlen-utf8", "sharding_indexed"})  # what writer.py uses
BITROUND_CODEC = "numcodecs.bitround"  # writer.py's filter on float16 frames of a bitround<N> store
ARRAY_DTYPES = {
    "frames": ("float16", "float32", INT8),
    SCALES: ("float32",),
    "offsets": ("int64",),
    "n_samples": ("int64",),
    "keys": ("string",),
    "meta": ("string",),
}
CHUNK_KEYS = {"name": "default", "configuration": {"separator": "/"}}  # chunk (i, j) is the file c/i/j
READ_ERRORS = (ValueError, RuntimeError, OSError)  # zarr and codec errors (a crc32c mismatch is a ValueError)


@dataclass
class Clip:
    key: str
    frames: np.ndarray  # (T', D) float32 for float32 and int8 stores (dequantised), float16 for float16 and bitround
    meta: dict
    n_samples: int  # audio length at 16 kHz


def list_encoders(root: Path | str) -> list[EncoderInfo]:
    """Every encoder store under `root` (a folder or an fsspec URL), in name order."""
    root, files = open_root(root)
    files.sync_encoders()
    base = features_root(root)
    if not base.is_dir():
        return []
    infos = []
    for directory in sorted(base.iterdir()):
        if (directory / ENCODER_FILE).is_file():
            infos.append(read_encoder_file(directory / ENCODER_FILE))
    return infos


def read_encoder_info(root: Path | str, encoder_id: str) -> EncoderInfo | None:
    root, files = open_root(root)
    files.sync_encoder(encoder_dir(root, encoder_id))
    path = encoder_dir(root, encoder_id) / ENCODER_FILE
    return read_encoder_file(path) if path.is_file() else None


def read_encoder_file(path: Path) -> EncoderInfo:
    """encoder.json, refused with one line when it is not JSON of this format."""
    try:
        data = _load_json(path)
    except ValueError as e:
        raise StoreFileError(path, str(e)) from e
    if data.get("format") != FORMAT:
        raise StoreFileError(path, f"store format {data.get('format')!r}; this version reads {FORMAT}")
    try:
        return EncoderInfo.from_json(json.dumps(data))
    except TypeError as e:  # a required field is absent
        raise StoreFileError(path, f"not a complete encoder record ({e})") from e


def _load_json(path: Path) -> dict:
    """A JSON object from `path`; ValueError (naming no path, the caller does) when it is not one."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _codec_names(codecs: object) -> Iterator[str]:
    """Every codec name in a v3 codec list, including those nested in the sharding codec."""
    for codec in codecs if isinstance(codecs, list) else [codecs]:
        if isinstance(codec, str):
            yield codec
            continue
        if not isinstance(codec, dict):
            yield repr(codec)
            continue
        yield str(codec.get("name"))
        config = codec.get("configuration") or {}
        for key in ("codecs", "index_codecs"):
            if isinstance(config, dict) and key in config:
                yield from _codec_names(config[key])


def _codecs_named(codecs: object, name: str) -> Iterator[dict]:
    """Every codec dict called `name` in a v3 codec list, including those nested in the sharding codec."""
    for codec in codecs if isinstance(codecs, list) else []:
        if isinstance(codec, dict):
            if codec.get("name") == name:
                yield codec
            config = codec.get("configuration") or {}
            for key in ("codecs", "index_codecs"):
                if isinstance(config, dict) and key in config:
                    yield from _codecs_named(config[key], name)


def frames_data_type(part: Path) -> object:
    """The data type the frames array's zarr.json claims (checked by `_array_problem`)."""
    try:
        return _load_json(part / "frames" / ZARR_JSON).get("data_type")
    except (OSError, ValueError):
        return None


def _array_problem(part: Path, name: str) -> str | None:
    """What makes array `name` of `part` something other than what writer.py writes, or None."""
    path = part / name / ZARR_JSON
    if not path.is_file():
        return "array is missing" if not (part / name).exists() else f"no {ZARR_JSON} (not a Zarr v3 array)"
    try:
        meta = _load_json(path)
    except ValueError as e:
        return f"{ZARR_JSON}: {e}"
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
        return f"{ZARR_JSON} is not a Zarr v3 array"
    if meta.get("data_type") not in ARRAY_DTYPES[name]:
        return f"data type {meta.get('data_type')!r}, expected {' or '.join(ARRAY_DTYPES[name])}"
    rounded = name == "frames" and meta["data_type"] == "float16"  # only bitround<N> stores filter their frames
    allowed = WRITTEN_CODECS | {BITROUND_CODEC} if rounded else WRITTEN_CODECS
    foreign = next((c for c in _codec_names(meta.get("codecs", [])) if c not in allowed), None)
    if foreign is not None:
        return f"codec {foreign!r} is not one this format writes"
    bitround = _codecs_named(meta.get("codecs", []), BITROUND_CODEC)
    keepbits = [(c.get("configuration") or {}).get("keepbits") for c in bitround]
    if any(not isinstance(k, int) or k not in BITROUND_BITS for k in keepbits):
        return f"codec {BITROUND_CODEC!r} keepbits {keepbits[0]!r}, expected 1 to {BITROUND_BITS[-1]}"
    if meta.get("storage_transformers") or meta.get("chunk_key_encoding") != CHUNK_KEYS:
        return "chunk layout is not the one this format writes"
    return None


def part_metadata(path: Path) -> dict | None:
    """A part's attributes, read as JSON and checked before zarr opens anything; None when the part
    is absent or has no metadata yet.

    Raises `StoreFileError` for a part of another format (Zarr v2, another `format`, codecs or data types
    this format never writes): it is refused, never decoded.
    """
    if not path.is_dir():
        return None
    meta_path = path / ZARR_JSON
    if not meta_path.is_file():
        v2 = [n for n in ZARR_V2_FILES if (path / n).exists()]
        if v2:
            raise StoreFileError(path, f"Zarr v2 ({v2[0]}), not a {FORMAT} part (Zarr v3); it is not opened: delete it")
        return None
    try:
        group = _load_json(meta_path)
    except ValueError as e:
        raise StoreFileError(path, f"{ZARR_JSON}: {e}") from e
    if group.get("zarr_format") != 3 or group.get("node_type") != "group":
        raise StoreFileError(path, f"{ZARR_JSON} is not a Zarr v3 group")
    attrs = group.get("attributes")
    if not isinstance(attrs, dict) or attrs.get("format") != FORMAT:
        found = attrs.get("format") if isinstance(attrs, dict) else None
        raise StoreFileError(path, f"part format {found!r}; this version reads {FORMAT}")
    int8 = frames_data_type(path) == INT8
    for name in part_arrays(int8):
        problem = _array_problem(path, name)
        if problem:
            why = " (int8 frames need their scales)" if name == SCALES else ""
            raise StoreFileError(path, f"{name}: {problem}{why}")
    if not int8 and (path / SCALES).exists():
        raise StoreFileError(path, f"{SCALES}: only int8 parts have one, these frames are not int8")
    if int8 and (rows := _shape(path, SCALES)[:1]) != _shape(path, "frames")[:1]:
        raise StoreFileError(path, f"{SCALES}: shape {rows}, one scale per frame {_shape(path, 'frames')[:1]} expected")
    return attrs


def _shape(part: Path, name: str) -> list:
    """The shape array `name`'s zarr.json claims (already checked to be a Zarr v3 array)."""
    shape = _load_json(part / name / ZARR_JSON).get("shape")
    return shape if isinstance(shape, list) else []


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
    """The attrs of a complete part, or None when it is missing or unfinished; `StoreFileError` when foreign."""
    attrs = part_metadata(path)
    if attrs is None or attrs.get("status") != STATUS_COMPLETE:
        return None
    try:
        return PartAttrs.from_dict(attrs)
    except (KeyError, TypeError) as e:
        raise StoreFileError(path, f"attributes are not a complete part record ({e!r})") from e


def open_part(path: Path) -> zarr.Group:
    """The part's group, opened as Zarr v3 only (its metadata was checked by `part_metadata`)."""
    quiet_numcodecs()
    return zarr.open_group(path, mode="r", zarr_format=3)


def chunk_file(index: tuple[int, ...]) -> Path:
    """The file holding chunk (or shard) `index` of an array, relative to the array's folder."""
    return Path("c", *(str(i) for i in index))


def missing_chunk_files(array: zarr.Array, directory: Path, files: LocalFiles = LOCAL) -> list[str]:
    """Chunk (or shard) files the array's shape calls for that the store does not hold."""
    grid = array.shards or array.chunks
    counts = [max(1, math.ceil(size / step)) if size else 0 for size, step in zip(array.shape, grid, strict=True)]
    return [str(chunk_file(i)) for i in np.ndindex(*counts) if not files.present(directory / chunk_file(i))]


def check_chunk_files(part: Path, group: zarr.Group, name: str, files: LocalFiles = LOCAL) -> zarr.Array:
    """Array `name` of `part`, or `StoreFileError` when a chunk file is missing (zarr would read zeros)."""
    array = group[name]
    missing = missing_chunk_files(array, part / name, files)
    if missing:
        raise StoreFileError(part, f"{name}: {len(missing)} chunk files missing ({', '.join(missing[:3])})")
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


class FeatureSplit:
    """All complete parts of one (encoder-id, dataset, split), addressed by a global clip index."""

    def __init__(self, root: Path | str, encoder_id: str, dataset: str, split: str):
        root, self._files = open_root(root)  # a URL's mirror; pickled with the split, so workers share it
        self.directory = split_dir(root, encoder_id, dataset, split)
        self._files.sync_split(self.directory)
        self.parts = complete_parts(self.directory)
        self._offsets: list[np.ndarray] = []
        self._keys: list[np.ndarray] = []
        self._meta: list[np.ndarray] = []
        self._n_samples: list[np.ndarray] = []
        starts = [0]
        for path in self.parts:
            group = open_part(path)
            check_chunk_files(path, group, "frames", self._files)  # read later, clip by clip
            self._offsets.append(read_whole(path, group, "offsets"))
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
            self._frames[part] = open_part(self.parts[part])["frames"]
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
