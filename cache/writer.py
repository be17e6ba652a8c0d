"""Write one part (the features of one source shard) atomically, whole or streamed clip by clip.

The part is written to ``part-X.zarr.tmp-<host>-<pid>-<uuid>``, its counts checked, ``status`` set,
then renamed into place: a reader never sees a half-written part and a killed run loses at most the
parts in flight. A part already there is moved aside first and put back if the rename fails. Chunks
run along time with full D (about 1 MB each), packed by the sharding codec into a few files, each
chunk guarded by crc32c. Any OS error (disk full, read-only, permissions) is a one-line
`CacheError` naming the path, and the temp is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import zarr
import zarr.storage
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.codecs.numcodecs import BitRound

from xares_llm.cache.atomic import remove_path, temp_path
from xares_llm.cache.dtypes import INT8, array_dtype, bitround_bits, held_dtype, quantise_int8, quiet_numcodecs
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import SCALES, STATUS_COMPLETE, TMP_MARKER, PartAttrs, SourceInfo
from xares_llm.cache.locks import pid_alive

CHUNK_BYTES = 1 << 20  # target bytes per frames chunk
CHUNKS_PER_SHARD = 64  # chunks packed into one file by the sharding codec


@dataclass
class PartBuffer:
    """Clips collected in order: a whole part for `write_part`, or one window for `PartWriter.extend`."""

    dim: int
    dtype: str  # a store dtype (cache/dtypes.py); frames are held as its held_dtype, quantised on write
    device: str = ""  # where the encoder ran (recorded with the part)
    frames: list[np.ndarray] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    n_samples: list[int] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)

    def add(self, key: str, frames: np.ndarray, meta_json: str, n_samples: int) -> None:
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ValueError(f"clip {key}: frames of shape {frames.shape}, expected (T', {self.dim})")
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
    writer = PartWriter(final_path, buffer.dim, buffer.dtype, buffer.device)
    writer.extend(buffer)
    return writer.close(source, buffer.dropped, status, reason)


def encoded_bytes(buffer: PartBuffer) -> dict[str, int]:
    """Bytes each array of the part `buffer` makes would take (``""``: the group's own metadata),
    written to memory: what xares_llm/extract/plan.py scales up to a whole store."""
    store: dict = {}
    group = zarr.open_group(zarr.storage.MemoryStore(store_dict=store), mode="w")
    frames_array, scales_array, _ = create_frame_arrays(group, buffer.dim, buffer.dtype)
    frames = np.concatenate(buffer.frames) if buffer.frames else np.zeros((0, buffer.dim), held_dtype(buffer.dtype))
    if scales_array is not None:
        frames, scales = quantise_int8(frames)
        scales_array.resize(scales.shape)
        scales_array[:] = scales
    frames_array.resize(frames.shape)
    frames_array[:] = frames
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in buffer.frames], dtype=np.int64)]).astype(np.int64)
    write_index_arrays(group, offsets, buffer.n_samples, buffer.keys, buffer.meta)
    sizes: dict[str, int] = {}
    for key, value in store.items():
        name = key.split("/")[0] if "/" in key else ""
        sizes[name] = sizes.get(name, 0) + len(value.to_bytes())
    return sizes


def create_frame_arrays(group: zarr.Group, dim: int, dtype: str) -> tuple[zarr.Array, zarr.Array | None, int]:
    """Empty ``frames`` (and, for int8, ``scales``) arrays of a part; returns them and the rows per
    codec shard. int8 scales are chunked like frames, so one frames chunk needs one scales chunk."""
    stored = array_dtype(dtype)
    bits = bitround_bits(dtype)
    quiet_numcodecs()
    rows = max(1, CHUNK_BYTES // (dim * stored.itemsize))
    shard_rows = rows * CHUNKS_PER_SHARD
    frames = group.create_array(
        "frames",
        shape=(0, dim),
        dtype=stored,
        chunks=(rows, dim),
        shards=(shard_rows, dim),
        filters=[BitRound(keepbits=bits)] if bits is not None else None,
        compressors=_codecs(),
        config=ARRAY_CONFIG,
    )
    scales = None
    if dtype == INT8:
        scales = group.create_array(
            SCALES,
            shape=(0,),
            dtype=np.float32,
            chunks=(rows,),
            shards=(shard_rows,),
            compressors=_codecs(),
            config=ARRAY_CONFIG,
        )
    return frames, scales, shard_rows


def write_index_arrays(
    group: zarr.Group, offsets: np.ndarray, n_samples: list[int], keys: list[str], meta: list[str]
) -> None:
    """The small per-clip arrays of a part: offsets, n_samples, keys and meta."""
    n_clips, per_clip = len(keys), max(1, len(keys))
    group.create_array("offsets", data=offsets, chunks=(per_clip + 1,), compressors=_codecs(), config=ARRAY_CONFIG)
    group.create_array(
        "n_samples",
        data=np.array(n_samples, dtype=np.int64),
        chunks=(per_clip,),
        compressors=_codecs(),
        config=ARRAY_CONFIG,
    )
    for name, values in (("keys", keys), ("meta", meta)):
        array = group.create_array(
            name, shape=(n_clips,), dtype=str, chunks=(per_clip,), compressors=_codecs(), config=ARRAY_CONFIG
        )
        if n_clips:
            array[:] = np.array(values, dtype=object)


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


class PartWriter:
    """One part streamed clip by clip into its temp folder; `close` checks it and renames it into place.

    Frames are appended in whole sharding-codec shards (`CHUNKS_PER_SHARD` chunks, about 64 MB), held
    in one preallocated buffer until full, so every shard file is written once, exactly as a one-shot
    write of the whole part would write it, and memory stays bounded by one shard whatever the part's
    length. int8 frames are quantised as they are added, with their per-frame scales held and
    written the same way; ``bitround<N>`` adds numcodecs' BitRound before zstd (cache/dtypes.py). Keys,
    meta and lengths (small) are written at `close`. Any OS error is a one-line `CacheError` naming
    the part, and the temp is removed.
    """

    def __init__(self, final_path: Path, dim: int, dtype: str, device: str = ""):
        self.final_path = Path(final_path)
        self.dim, self.dtype, self.device = dim, dtype, device
        self.keys: list[str] = []
        self.meta: list[str] = []
        self.n_samples: list[int] = []
        self.offsets: list[int] = [0]
        self.nonfinite = 0  # frames holding NaN or Inf
        self.tmp_path = temp_path(self.final_path)
        self._written = 0  # frames rows already in the array
        self._held = 0  # frames rows waiting in the shard buffer
        self.stored_dtype = array_dtype(dtype)
        with self._writing():
            self.final_path.parent.mkdir(parents=True, exist_ok=True)
            self.group = zarr.open_group(self.tmp_path, mode="w")
            self.frames, self.scales, self.shard_rows = create_frame_arrays(self.group, dim, dtype)
        self._buffer: np.ndarray | None = None  # allocated on the first frames, touched only as filled
        self._scale_buffer: np.ndarray | None = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            self.abort()
            raise CacheError(write_failure(self.final_path, e)) from e
        except BaseException:
            self.abort()
            raise

    def add(self, key: str, frames: np.ndarray, meta_json: str, n_samples: int) -> None:
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ValueError(f"clip {key}: frames of shape {frames.shape}, expected (T', {self.dim})")
        frames = frames.astype(held_dtype(self.dtype), copy=False)
        if len(frames):  # counted before quantising: an int8 frame with NaN or Inf gets a NaN scale
            self.nonfinite += int((~np.isfinite(frames)).any(axis=1).sum())
        scales = None
        if self.scales is not None:
            frames, scales = quantise_int8(frames)
        with self._writing():
            self._hold(frames, scales)
        self.keys.append(key)
        self.meta.append(meta_json)
        self.n_samples.append(int(n_samples))
        self.offsets.append(self.offsets[-1] + len(frames))

    def extend(self, buffer: PartBuffer) -> None:
        for key, frames, meta, n in zip(buffer.keys, buffer.frames, buffer.meta, buffer.n_samples, strict=True):
            self.add(key, frames, meta, n)

    def _hold(self, frames: np.ndarray, scales: np.ndarray | None) -> None:
        """Copy `frames` (and their int8 scales) into the shard buffer, writing each shard as it fills."""
        while len(frames):
            if self._buffer is None:
                self._buffer = np.empty((self.shard_rows, self.dim), self.stored_dtype)
                if scales is not None:
                    self._scale_buffer = np.empty(self.shard_rows, np.float32)
            take = min(len(frames), self.shard_rows - self._held)
            self._buffer[self._held : self._held + take] = frames[:take]
            if scales is not None:
                self._scale_buffer[self._held : self._held + take] = scales[:take]
                scales = scales[take:]
            self._held += take
            frames = frames[take:]
            if self._held == self.shard_rows:
                self._flush()

    def _flush(self) -> None:
        if not self._held:
            return
        end = self._written + self._held
        self.frames.resize((end, self.dim))
        self.frames[self._written : end] = self._buffer[: self._held]
        if self.scales is not None:
            self.scales.resize((end,))
            self.scales[self._written : end] = self._scale_buffer[: self._held]
        self._written, self._held = end, 0

    def close(
        self, source: SourceInfo, dropped: list[dict], status: str = STATUS_COMPLETE, reason: str = ""
    ) -> PartAttrs:
        """Write the index arrays and attrs, check the counts, and rename the part into place."""
        with self._writing():
            attrs = self._close(source, dropped, status, reason)
        self._buffer = self._scale_buffer = None
        return attrs

    def _close(self, source: SourceInfo, dropped: list[dict], status: str, reason: str) -> PartAttrs:
        self._flush()
        n_clips, group = len(self.keys), self.group
        offsets = np.array(self.offsets, dtype=np.int64)
        write_index_arrays(group, offsets, self.n_samples, self.keys, self.meta)
        attrs = PartAttrs(
            source=source,
            n_clips=n_clips,
            n_frames=int(offsets[-1]),
            dropped=dropped,
            nonfinite=self.nonfinite,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            writer={"host": socket.gethostname(), "pid": os.getpid(), "device": self.device},
            status=status,
            reason=reason,
        )
        check = zarr.open_group(self.tmp_path, mode="r")
        if check["offsets"][-1] != check["frames"].shape[0] or check["keys"].shape[0] != n_clips:
            raise RuntimeError(f"part {self.tmp_path} failed its count check after writing")
        group.attrs.update(attrs.to_dict())
        _replace_dir(self.tmp_path, self.final_path)
        return attrs

    def abort(self) -> None:
        """Remove the temp: nothing of this part is kept."""
        self._buffer = self._scale_buffer = None
        if self.tmp_path.exists():
            shutil.rmtree(self.tmp_path, ignore_errors=True)


def count_nonfinite(frames: np.ndarray, scales: np.ndarray | None) -> int:
    """Frames of a stored part holding NaN or Inf; an int8 frame is non-finite when its scale is
    (cache/dtypes.py)."""
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


def _owner_is_gone(owner: str) -> bool:
    """True when `owner` (``host-pid``) is a process on this host that no longer runs."""
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's writer: we cannot tell, so we leave it alone
    return not pid_alive(int(pid))


def remove_stale_temps(directory: Path) -> int:
    """Delete temps (part directories, files) whose writer process is gone; returns how many were removed.

    Temps of live writers (another `xares extract` on the same store) are left alone.
    """
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if TMP_MARKER in path.name and _owner_is_gone(path.name.split(TMP_MARKER, 1)[1].rsplit("-", 1)[0]):
            remove_path(path)
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
        remove_path(path)
    return len(temps)
