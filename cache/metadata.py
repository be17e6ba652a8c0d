"""What a store and its parts say about themselves, read as plain JSON and checked before zarr opens anything.

A part in another format (e.g. a Zarr v2 object array, which could unpickle its chunks), a codec
this package does not write, or an array of the wrong dtype is an error naming the part, never data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

from xares_llm.cache.dtypes import BITROUND_BITS, INT8
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
)
from xares_llm.cache.remote import open_root

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
SHARDING = "sharding_indexed"
MAX_CHUNK_ITEMS = 1 << 28  # items in one chunk or shard: 1 GB of float32 at most; writer.py writes about 64 MB
CHUNK_KEYS = {"name": "default", "configuration": {"separator": "/"}}  # chunk (i, j) is the file c/i/j
READ_ERRORS = (ValueError, RuntimeError, OSError)  # zarr and codec errors (a crc32c mismatch is a ValueError)


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
    """The data type the frames array's zarr.json claims (checked by `_array_meta`)."""
    try:
        return _load_json(part / "frames" / ZARR_JSON).get("data_type")
    except (OSError, ValueError):
        return None


def _array_meta(part: Path, name: str) -> tuple[dict | None, str | None]:
    """Array `name`'s zarr.json, and what makes it something other than what writer.py writes (None if nothing)."""
    path = part / name / ZARR_JSON
    if not path.is_file():
        return None, "array is missing" if not (part / name).exists() else f"no {ZARR_JSON} (not a Zarr v3 array)"
    try:
        meta = _load_json(path)
    except ValueError as e:
        return None, f"{ZARR_JSON}: {e}"
    return meta, _array_problem(name, meta)


def _array_problem(name: str, meta: dict) -> str | None:
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
    metas = {}
    for name in part_arrays(int8):
        metas[name], problem = _array_meta(path, name)
        if problem:
            why = " (int8 frames need their scales)" if name == SCALES else ""
            raise StoreFileError(path, f"{name}: {problem}{why}")
    if not int8 and (path / SCALES).exists():
        raise StoreFileError(path, f"{SCALES}: only int8 parts have one, these frames are not int8")
    shapes = {}
    for name, meta in metas.items():
        problem = layout_problem(meta, 2 if name == "frames" else 1)
        if problem:
            raise StoreFileError(path, f"{name}: {problem}")
        shapes[name] = meta["shape"]
    problem = shapes_problem(shapes, attrs)
    if problem:
        raise StoreFileError(path, problem)
    return attrs


def _positive_ints(value: object, ndim: int, minimum: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == ndim
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)
    )


def _config(entry: object) -> dict:
    """The ``configuration`` mapping of a zarr.json entry, {} when there is none."""
    config = entry.get("configuration") if isinstance(entry, dict) else None
    return config if isinstance(config, dict) else {}


def layout_problem(meta: dict, ndim: int) -> str | None:
    """What is wrong with an array's shape and chunk grid as its zarr.json claims them, or None.

    Checked before zarr sees them: a grid zarr cannot use is a ValueError deep inside it, and a chunk
    claiming terabytes would be allocated when read.
    """
    shape = meta.get("shape")
    if not _positive_ints(shape, ndim, 0):
        return f"shape {one_line(shape)} is not {ndim} non-negative integers"
    grid = meta.get("chunk_grid")
    chunks = _config(grid).get("chunk_shape")
    if not isinstance(grid, dict) or grid.get("name") != "regular" or not _positive_ints(chunks, ndim, 1):
        return f"chunk grid {one_line(grid)} is not a regular grid of {ndim} positive integers"
    inner = [_config(c).get("chunk_shape") for c in _codecs_named(meta.get("codecs"), SHARDING)]
    for shard in inner:
        if not _positive_ints(shard, ndim, 1) or any(o % i for o, i in zip(chunks, shard, strict=True)):
            return f"sharding chunks {one_line(shard)} do not divide its chunk grid {chunks}"
    if math.prod(chunks) > MAX_CHUNK_ITEMS:
        return f"chunks of {chunks} items, more than {MAX_CHUNK_ITEMS} (writer.py writes 64 MB shards)"
    return None


def shapes_problem(shapes: dict[str, list[int]], attrs: dict) -> str | None:
    """Whether the arrays' claimed lengths agree with each other and with the part's attributes."""
    n_clips, n_frames = attrs.get("n_clips"), attrs.get("n_frames")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (n_clips, n_frames)):
        return f"attributes n_clips {one_line(n_clips)} and n_frames {one_line(n_frames)} are not counts"
    expected = {"frames": n_frames, SCALES: n_frames, "offsets": n_clips + 1}
    for name, shape in shapes.items():
        rows = expected.get(name, n_clips)
        if shape[0] != rows:
            return f"{name}: shape[0] is {shape[0]}, attributes say {rows} ({n_clips} clips, {n_frames} frames)"
    return None


def one_line(value: object, limit: int = 80) -> str:
    """A short repr: an error line quotes a file's value, never all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def complete_parts(directory: Path) -> list[Path]:
    """Complete part groups in `directory`, sorted by name (the source shard order)."""
    return [path for path, _ in complete_part_attrs(directory)]


def complete_part_attrs(directory: Path) -> list[tuple[Path, PartAttrs]]:
    """Complete part groups in `directory` with their attrs, sorted by name: one read of each part's
    metadata serves both (checking it costs milliseconds a part, and a store has a thousand)."""
    if not directory.is_dir():
        return []
    parts = []
    for path in sorted(directory.iterdir()):
        if not path.name.endswith(PART_SUFFIX) or TMP_MARKER in path.name:
            continue
        attrs = read_part_attrs(path)
        if attrs is not None:
            parts.append((path, attrs))
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


def read_part_record(path: Path) -> PartAttrs | None:
    """The attrs of a finished part whatever its status (complete, partial, failed); None if there is none."""
    try:
        attrs = part_metadata(path)  # checked as JSON first: a foreign part is never opened by zarr
        return PartAttrs.from_dict(attrs) if attrs and "status" in attrs else None
    except (StoreFileError, ValueError, KeyError, TypeError):
        return None
