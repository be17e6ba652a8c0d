"""A part's small per-clip arrays (offsets, n_samples, keys, meta) read straight from their one chunk file.

Opening a store reads four such arrays per part. Through zarr each costs a few milliseconds of
array set-up and event-loop hand-offs, so a 863-part Track A store took 10-20 s to open on two
cores. The writer (cache/writer.py `write_index_arrays`) stores each as ONE chunk with the codecs
[bytes little-endian | vlen-utf8, zstd, crc32c]; for exactly that layout we check the crc32c,
decompress and decode here, with the same codecs zarr itself calls (numcodecs, google_crc32c), and
return what zarr returns. Any other layout returns None and the caller reads through zarr.
"""

from __future__ import annotations

import json
from pathlib import Path

import google_crc32c
import numpy as np
from numcodecs import Zstd
from numcodecs.vlen import VLenUTF8

from xares_llm.cache.errors import StoreFileError

_ZSTD, _VLEN = Zstd(), VLenUTF8()
_DTYPES = {"int64": ("bytes", np.dtype("<i8")), "string": ("vlen-utf8", np.dtypes.StringDType())}


def _layout(meta: dict) -> tuple[int, int, str] | None:
    """(length, chunk length, data type) when the array is 1-D, one chunk, with the writer's codecs; else None."""
    if meta.get("zarr_format") != 3 or meta.get("node_type") != "array" or meta.get("storage_transformers"):
        return None
    shape, kind = meta.get("shape"), meta.get("data_type")
    grid = meta.get("chunk_grid", {})
    encoding = meta.get("chunk_key_encoding", {})
    if kind not in _DTYPES or not isinstance(shape, list) or len(shape) != 1 or grid.get("name") != "regular":
        return None
    if encoding.get("name") != "default" or encoding.get("configuration", {}).get("separator", "/") != "/":
        return None
    chunk = grid.get("configuration", {}).get("chunk_shape")
    if not isinstance(chunk, list) or len(chunk) != 1 or not isinstance(chunk[0], int) or chunk[0] < shape[0]:
        return None  # more than one chunk
    codecs = meta.get("codecs", [])
    names = [c.get("name") for c in codecs]
    if names != [_DTYPES[kind][0], "zstd", "crc32c"]:
        return None
    if kind == "int64" and codecs[0].get("configuration", {}).get("endian", "little") != "little":
        return None
    return shape[0], chunk[0], kind


def chunk_grid_counts(part: Path, name: str) -> list[int] | None:
    """Chunk (or codec shard) files along each axis array `name`'s zarr.json calls for; None if unreadable."""
    try:
        meta = json.loads((part / name / "zarr.json").read_bytes())
        shape = meta["shape"]
        step = meta["chunk_grid"]["configuration"]["chunk_shape"]
        if meta["chunk_grid"]["name"] != "regular" or len(shape) != len(step):
            return None
        return [max(1, -(-size // s)) if size else 0 for size, s in zip(shape, step, strict=True)]
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None


def read_index_array(part: Path, name: str) -> np.ndarray | None:
    """Array `name` of `part` as zarr's `array[:]` returns it, or None when its layout is not the writer's."""
    directory = part / name
    try:
        meta = json.loads((directory / "zarr.json").read_bytes())
    except (OSError, ValueError):
        return None  # zarr reports it, with its own message
    try:
        layout = _layout(meta) if isinstance(meta, dict) else None
    except (AttributeError, TypeError):  # entries of the wrong kind: zarr's own checks name them
        layout = None
    if layout is None:
        return None
    length, chunk_length, kind = layout
    dtype = _DTYPES[kind][1]
    if length == 0:
        return np.zeros(0, dtype=dtype)
    try:
        raw = (directory / "c" / "0").read_bytes()
    except FileNotFoundError:
        raise StoreFileError(part, f"{name}: 1 chunk files missing (c/0)") from None
    body, stored = raw[:-4], raw[-4:]
    if len(raw) < 4 or np.uint32(google_crc32c.value(body)).tobytes() != stored:
        raise StoreFileError(part, f"{name}: cannot read (stored and computed checksum do not match)")
    try:
        decoded = _ZSTD.decode(body)
        values = np.frombuffer(decoded, dtype=dtype).copy() if kind == "int64" else _VLEN.decode(decoded).astype(dtype)
    except (ValueError, RuntimeError) as e:
        raise StoreFileError(part, f"{name}: cannot read ({e})") from e
    if len(values) != chunk_length:  # a whole chunk is stored, padded past the array's end
        raise StoreFileError(part, f"{name}: chunk holds {len(values)} values, zarr.json says {chunk_length}")
    return values[:length]
