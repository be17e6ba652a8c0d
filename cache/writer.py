"""Write one part (the features of one source shard) atomically.

The part is written to ``part-X.zarr.tmp-<uuid>``, its counts checked, ``status`` set, then
renamed into place: a reader never sees a half-written part and a killed run loses at most the
parts in flight. Chunks run along time with full D (about 1 MB each), packed by the sharding codec
into a few files, each chunk guarded by crc32c.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from xares_llm.cache.format import LOCK_SUFFIX, TMP_MARKER, PartAttrs, SourceInfo

CHUNK_BYTES = 1 << 20  # target bytes per frames chunk
CHUNKS_PER_SHARD = 64  # chunks packed into one file by the sharding codec


@dataclass
class PartBuffer:
    """Clips of one part collected in order before the single write."""

    dim: int
    dtype: str
    frames: list[np.ndarray] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    n_samples: list[int] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)

    def add(self, key: str, frames: np.ndarray, meta_json: str, n_samples: int) -> None:
        if frames.ndim != 2 or frames.shape[1] != self.dim:
            raise ValueError(f"clip {key}: frames of shape {frames.shape}, expected (T', {self.dim})")
        self.frames.append(frames.astype(self.dtype, copy=False))
        self.keys.append(key)
        self.meta.append(meta_json)
        self.n_samples.append(int(n_samples))

    def drop(self, key: str, reason: str) -> None:
        self.dropped.append({"key": key, "reason": reason})


def _codecs() -> list:
    return [ZstdCodec(level=3), Crc32cCodec()]


# Every chunk is written, even one equal to the fill value, so `verify` can tell a missing file
# from zeros.
ARRAY_CONFIG = {"write_empty_chunks": True}


def write_part(final_path: Path, buffer: PartBuffer, source: SourceInfo) -> PartAttrs:
    """Write `buffer` as a complete part at `final_path` (replacing any old part there)."""
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = final_path.with_name(f"{final_path.name}{TMP_MARKER}{_owner()}-{uuid.uuid4().hex[:8]}")
    lengths = np.array([len(f) for f in buffer.frames], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    frames = np.concatenate(buffer.frames) if buffer.frames else np.zeros((0, buffer.dim), buffer.dtype)
    n_frames, n_clips = int(offsets[-1]), len(buffer.keys)
    try:
        group = zarr.open_group(tmp_path, mode="w")
        rows = max(1, CHUNK_BYTES // (buffer.dim * np.dtype(buffer.dtype).itemsize))
        shard_rows = rows * CHUNKS_PER_SHARD
        group.create_array(
            "frames",
            shape=frames.shape,
            dtype=buffer.dtype,
            chunks=(rows, buffer.dim),
            shards=(shard_rows, buffer.dim),
            compressors=_codecs(),
            config=ARRAY_CONFIG,
        )[:] = frames
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
        nonfinite = int((~np.isfinite(frames)).any(axis=1).sum()) if n_frames else 0
        attrs = PartAttrs(
            source=source,
            n_clips=n_clips,
            n_frames=n_frames,
            dropped=buffer.dropped,
            nonfinite=nonfinite,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            writer={"host": socket.gethostname(), "pid": os.getpid()},
        )
        check = zarr.open_group(tmp_path, mode="r")
        if check["offsets"][-1] != check["frames"].shape[0] or check["keys"].shape[0] != n_clips:
            raise RuntimeError(f"part {tmp_path} failed its count check after writing")
        group.attrs.update(attrs.to_dict())
        if final_path.exists():
            shutil.rmtree(final_path)
        tmp_path.rename(final_path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path, ignore_errors=True)
    return attrs


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _owner_is_gone(owner: str) -> bool:
    """True when `owner` (``host-pid``) is a process on this host that no longer runs."""
    host, _, pid = owner.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's writer: we cannot tell, so we leave it alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_temps(directory: Path) -> int:
    """Delete temp parts whose writer process is gone (killed runs); returns how many were removed.

    Temps of live writers (another `xares extract` on the same store) are left alone.
    """
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if TMP_MARKER in path.name and _owner_is_gone(path.name.split(TMP_MARKER, 1)[1].rsplit("-", 1)[0]):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


class PartLock:
    """An exclusive claim on one part (``part-X.zarr.lock``), so independent extraction processes
    on one store split the work instead of writing the same part twice.

    A lock whose owner process is gone is taken over.
    """

    def __init__(self, final_path: Path):
        self.path = Path(final_path).with_name(Path(final_path).name + LOCK_SUFFIX)
        self.held = False

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    owner = self.path.read_text().strip()
                except FileNotFoundError:
                    continue  # released meanwhile: try again
                if not _owner_is_gone(owner):
                    return False
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(_owner())
            self.held = True
            return True
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
