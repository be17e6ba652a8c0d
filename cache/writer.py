"""Write one part (the features of one source shard) atomically.

The part is written to ``part-X.zarr.tmp-<host>-<pid>-<uuid>``, its counts checked, ``status`` set,
then renamed into place: a reader never sees a half-written part and a killed run loses at most the
parts in flight. A part already there is moved aside first and put back if the rename fails. Chunks
run along time with full D (about 1 MB each), packed by the sharding codec into a few files, each
chunk guarded by crc32c. Any OS error (disk full, read-only, permissions) is a one-line
`CacheError` naming the path, and the temp is removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import zarr
import zarr.storage
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.codecs.numcodecs import BitRound

from xares_llm.cache.atomic import temp_path
from xares_llm.cache.dtypes import INT8, array_dtype, bitround_bits, held_dtype, quantise_int8, quiet_numcodecs
from xares_llm.cache.errors import CacheError, StoreFileError
from xares_llm.cache.format import SCALES, STATUS_COMPLETE, TMP_MARKER, PartAttrs, SourceInfo
from xares_llm.cache.locks import pid_alive
from xares_llm.cache.reader import part_metadata

CHUNK_BYTES = 1 << 20  # target bytes per frames chunk
CHUNKS_PER_SHARD = 64  # chunks packed into one file by the sharding codec


@dataclass
class PartBuffer:
    """Clips of one part collected in order before the single write; int8 clips are quantised as added."""

    dim: int
    dtype: str  # a store dtype (cache/dtypes.py)
    device: str = ""  # where the encoder ran (recorded with the part)
    frames: list[np.ndarray] = field(default_factory=list)
    scales: list[np.ndarray] = field(default_factory=list)  # int8 only: one float32 per frame
    keys: list[str] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    n_samples: list[int] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)

    def add(self, key: str, frames: np.ndarray, meta_json: str, n_samples: int) -> None:
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ValueError(f"clip {key}: frames of shape {frames.shape}, expected (T', {self.dim})")
        if self.dtype == INT8:
            codes, scale = quantise_int8(frames)
            self.frames.append(codes)
            self.scales.append(scale)
        else:
            self.frames.append(frames.astype(held_dtype(self.dtype), copy=False))
        self.keys.append(key)
        self.meta.append(meta_json)
        self.n_samples.append(int(n_samples))


def _codecs() -> list:
    return [ZstdCodec(level=3), Crc32cCodec()]


# Every chunk is written, even one equal to the fill value, so `verify` can tell a missing file
# from zeros.
ARRAY_CONFIG = {"write_empty_chunks": True}


def write_part(
    final_path: Path, buffer: PartBuffer, source: SourceInfo, status: str = STATUS_COMPLETE, reason: str = ""
) -> PartAttrs:
    """Write `buffer` as a part with `status` at `final_path` (replacing any old part there)."""
    final_path = Path(final_path)
    try:
        return _write_part(final_path, buffer, source, status, reason)
    except OSError as e:
        raise CacheError(write_failure(final_path, e)) from e


def write_failure(path: Path, error: OSError) -> str:
    """One line: what could not be written, why, and what to do about it."""
    where = error.filename or path
    why = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        hint = "free disk space or point --cache at a larger disk"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "check the permissions or point --cache at a writable directory"
    else:
        hint = "check the disk and permissions, or point --cache elsewhere"
    return f"cannot write {path}: {why} ({where}); {hint}"


def fill_part(group: zarr.Group, buffer: PartBuffer) -> tuple[int, int, int]:
    """Write the buffer's arrays into `group` (on disk, or in memory to measure them: xares_llm/plan.py);
    returns (n_frames, n_clips, nonfinite frames)."""
    lengths = np.array([len(f) for f in buffer.frames], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    dtype = array_dtype(buffer.dtype)
    frames = np.concatenate(buffer.frames) if buffer.frames else np.zeros((0, buffer.dim), dtype)
    n_frames, n_clips = int(offsets[-1]), len(buffer.keys)
    bits = bitround_bits(buffer.dtype)
    quiet_numcodecs()
    rows = max(1, CHUNK_BYTES // (buffer.dim * dtype.itemsize))
    shard_rows = rows * CHUNKS_PER_SHARD
    group.create_array(
        "frames",
        shape=frames.shape,
        dtype=dtype,
        chunks=(rows, buffer.dim),
        shards=(shard_rows, buffer.dim),
        filters=[BitRound(keepbits=bits)] if bits is not None else None,
        compressors=_codecs(),
        config=ARRAY_CONFIG,
    )[:] = frames
    scales = None
    if buffer.dtype == INT8:  # chunked like frames, so one frames chunk needs one scales chunk
        scales = np.concatenate(buffer.scales) if buffer.scales else np.zeros(0, np.float32)
        group.create_array(
            SCALES, shape=scales.shape, dtype=np.float32, chunks=(rows,), shards=(shard_rows,),
            compressors=_codecs(), config=ARRAY_CONFIG,
        )[:] = scales  # fmt: skip
    per_clip = max(1, n_clips)
    group.create_array("offsets", data=offsets, chunks=(per_clip + 1,), compressors=_codecs(), config=ARRAY_CONFIG)
    group.create_array(
        "n_samples",
        data=np.array(buffer.n_samples, dtype=np.int64),
        chunks=(per_clip,),
        compressors=_codecs(),
        config=ARRAY_CONFIG,
    )
    for name, values in (("keys", buffer.keys), ("meta", buffer.meta)):
        array = group.create_array(
            name, shape=(n_clips,), dtype=str, chunks=(per_clip,), compressors=_codecs(), config=ARRAY_CONFIG
        )
        if n_clips:
            array[:] = np.array(values, dtype=object)
    return n_frames, n_clips, count_nonfinite(frames, scales)


def encoded_bytes(buffer: PartBuffer) -> dict[str, int]:
    """Bytes each array (and ``zarr.json`` of the group, under "") of the part would take, written in memory."""
    store: dict = {}
    fill_part(zarr.open_group(zarr.storage.MemoryStore(store_dict=store), mode="w"), buffer)
    sizes: dict[str, int] = {}
    for key, value in store.items():
        name = key.split("/")[0] if "/" in key else ""
        sizes[name] = sizes.get(name, 0) + len(value.to_bytes())
    return sizes


def _write_part(final_path: Path, buffer: PartBuffer, source: SourceInfo, status: str, reason: str) -> PartAttrs:
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = temp_path(final_path)
    try:
        group = zarr.open_group(tmp_path, mode="w")
        n_frames, n_clips, nonfinite = fill_part(group, buffer)
        attrs = PartAttrs(
            source=source,
            n_clips=n_clips,
            n_frames=n_frames,
            dropped=buffer.dropped,
            nonfinite=nonfinite,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            writer={"host": socket.gethostname(), "pid": os.getpid(), "device": buffer.device},
            status=status,
            reason=reason,
        )
        check = zarr.open_group(tmp_path, mode="r")
        if check["offsets"][-1] != check["frames"].shape[0] or check["keys"].shape[0] != n_clips:
            raise RuntimeError(f"part {tmp_path} failed its count check after writing")
        group.attrs.update(attrs.to_dict())
        _replace_dir(tmp_path, final_path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path, ignore_errors=True)
    return attrs


def count_nonfinite(frames: np.ndarray, scales: np.ndarray | None) -> int:
    """Frames holding NaN or Inf; an int8 frame is non-finite when its scale is (cache/dtypes.py)."""
    if scales is not None:
        return int((~np.isfinite(scales)).sum())
    return int((~np.isfinite(frames)).any(axis=1).sum()) if len(frames) else 0


def _replace_dir(new: Path, final: Path) -> None:
    """Rename directory `new` onto `final`; an old `final` is moved aside first, restored on failure."""
    if not final.exists():
        new.rename(final)
        return
    old = temp_path(final)
    final.rename(old)
    try:
        new.rename(final)
    except OSError:
        old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_part_record(path: Path) -> PartAttrs | None:
    """The attrs of a finished part whatever its status (complete, partial, failed); None if there is none."""
    try:
        attrs = part_metadata(path)  # checked as JSON first: a foreign part is never opened by zarr
        return PartAttrs.from_dict(attrs) if attrs and "status" in attrs else None
    except (StoreFileError, ValueError, KeyError, TypeError):
        return None


def _owner_is_gone(owner: str) -> bool:
    """True when `owner` (``host-pid``) is a process on this host that no longer runs."""
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's writer: we cannot tell, so we leave it alone
    return not pid_alive(int(pid))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temps(directory: Path) -> int:
    """Delete temps (part directories, files) whose writer process is gone; returns how many were removed.

    Temps of live writers (another `xares extract` on the same store) are left alone.
    """
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if TMP_MARKER in path.name and _owner_is_gone(path.name.split(TMP_MARKER, 1)[1].rsplit("-", 1)[0]):
            _remove(path)
            removed += 1
    return removed


def remove_part_temps(final_path: Path) -> int:
    """Delete every temp of one part, whoever wrote it: call only while holding the part's lock.

    Covers a killed writer whose pid now belongs to another process, which `remove_stale_temps` keeps.
    """
    final_path = Path(final_path)
    if not final_path.parent.is_dir():
        return 0
    temps = [p for p in final_path.parent.iterdir() if p.name.startswith(final_path.name + TMP_MARKER)]
    for path in temps:
        _remove(path)
    return len(temps)
