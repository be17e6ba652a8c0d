"""A feature store at an fsspec URL, read through a local mirror so reader.py's checks run unchanged.

The mirror (``$XARES_REMOTE_CACHE/<URL as a name>-<sha256 of the URL>/``, by default in ``<local cache>/remote/``)
has the store's own layout. Opening a split lists it on the remote once per process and fetches,
per part, everything but the frame chunks: the zarr.json files (and any Zarr v2 metadata, so the
reader refuses such a part exactly as it would locally) and the small arrays (offsets, keys, meta,
n_samples). A frame chunk file is fetched the first time a clip in it is read; after that every read
is local: later epochs, DataLoader workers (the store travels with a pickled `FeatureSplit`) and
later runs.

Only names the listing gives are fetched, each a plain relative path inside the store; a symlink is
refused, never followed. Each file is written atomically (cache/atomic.py), so workers fetching the
same chunk at once each rename a whole copy. A part whose listing changed (a file's size, or
zarr.json's mtime/etag) is dropped from the mirror and fetched again; one gone from the remote
leaves the mirror. The mirror is never written back: a URL cache is read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from xares_llm.cache.atomic import atomic_file, atomic_write_text, temp_path
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import (
    ENCODER_FILE,
    PART_SUFFIX,
    TMP_MARKER,
    check_encoder_id,
    features_root,
    member_parts,
)
from xares_llm.cache.root import is_url, local_cache_root

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

REMOTE_CACHE_ENV = "XARES_REMOTE_CACHE"
STAMP_SUFFIX = ".remote.json"  # part-X.zarr.remote.json beside a mirrored part: the listing it was fetched from
LAZY_PREFIX = "frames/c/"  # frame chunk files of a part: fetched on first read, not at open
VERSION_KEYS = ("ETag", "etag", "mtime", "LastModified", "last_modified", "created", "blob_id")
COPY_BYTES = 1 << 20
MIRROR_NAME_CHARS = 48


def mirror_base() -> Path:
    """Where URL stores are mirrored: $XARES_REMOTE_CACHE, else ``remote/`` in the local cache.

    The local cache is `xares_llm.cache.root.local_cache_root`.
    """
    if os.environ.get(REMOTE_CACHE_ENV):
        return Path(os.environ[REMOTE_CACHE_ENV]).expanduser()
    return local_cache_root() / "remote"


class LocalFiles:
    """Where the reader's files come from for a store on local disk: already there, nothing to fetch."""

    def sync_encoders(self) -> None:
        """Make every store's encoder.json readable under the root."""

    def sync_encoder(self, directory: Path) -> None:
        """Make one store's encoder.json readable in `directory`."""

    def sync_split(self, directory: Path) -> None:
        """Make the metadata and small arrays of every part in the split folder `directory` readable."""

    def present(self, path: Path) -> bool:
        """True when the store holds the file `path` (fetched or not)."""
        return path.is_file()

    def fetch(self, path: Path) -> bool:
        """Make `path` readable on local disk; False when the store does not hold it."""
        return path.is_file()

    def count(self, directory: Path) -> int:
        """How many files the store holds under `directory` (fetched or not)."""
        return len(self._names(directory))

    def _names(self, directory: Path) -> set[str]:
        return {os.path.join(top, n) for top, _, names in os.walk(directory) for n in names}


LOCAL = LocalFiles()


class RemoteStore(LocalFiles):
    """The store at `url`, mirrored file by file into the local folder `root`."""

    def __init__(self, url: str, root: Path):
        self.url = url.rstrip("/")
        self.root = root
        self.fetches = 0  # files fetched from the remote by this process (a benchmark and the tests count them)
        self._lazy: dict[str, int | None] = {}  # frame chunk files the listing holds -> size
        self._synced: set[str] = set()  # folders listed by this process (a changed remote shows in the next one)
        self._fs: AbstractFileSystem | None = None
        self._base = ""

    def __getstate__(self) -> dict:
        # a DataLoader worker opens its own filesystem (client sessions do not cross processes)
        return {**self.__dict__, "_fs": None}

    def sync_encoders(self) -> None:
        if "features" in self._synced:
            return
        names = {
            name.partition("/")[0]
            for name in self._list("features", maxdepth=2)
            if not name.startswith(".") and name.endswith(f"/{ENCODER_FILE}") and name.count("/") == 1
        }
        local = features_root(self.root)
        for directory in sorted(local.iterdir()) if local.is_dir() else []:
            if directory.name not in names:
                _drop(directory)  # no longer on the remote
        for name in sorted(names):
            self.sync_encoder(local / name)
        self._synced.add("features")

    def sync_encoder(self, directory: Path) -> None:
        relative = self._relative(directory)
        if relative in self._synced:
            return
        check_encoder_id(directory.name)
        if not self._get(f"{relative}/{ENCODER_FILE}", refresh=True):
            (directory / ENCODER_FILE).unlink(missing_ok=True)
        self._synced.add(relative)

    def sync_split(self, directory: Path) -> None:
        relative = self._relative(directory)
        if relative in self._synced:
            return
        parts: dict[str, dict[str, dict]] = {}  # part name -> {name inside the part: listing info}
        for name, info in self._list(relative).items():
            head, _, rest = name.partition("/")
            if rest and head.endswith(PART_SUFFIX) and TMP_MARKER not in head:
                parts.setdefault(head, {})[rest] = info
        for path in sorted(directory.iterdir()) if directory.is_dir() else []:
            if TMP_MARKER not in path.name and path.name.removesuffix(STAMP_SUFFIX) not in parts:
                _drop(path)  # a part the remote no longer holds
        for name, files in sorted(parts.items()):
            self._sync_part(directory / name, files)
        self._synced.add(relative)

    def present(self, path: Path) -> bool:
        return path.is_file() or self._relative(path) in self._lazy

    def fetch(self, path: Path) -> bool:
        if path.is_file():
            return True
        relative = self._relative(path)
        return relative in self._lazy and self._get(relative, self._lazy[relative])

    def _names(self, directory: Path) -> set[str]:
        prefix = self._relative(directory) + "/"
        listed = {str(self.root / name) for name in self._lazy if name.startswith(prefix)}
        return super()._names(directory) | listed

    def _sync_part(self, part: Path, files: dict[str, dict]) -> None:
        """Fetch a part's metadata and small arrays, first dropping a mirrored copy of another listing."""
        version = files.get("zarr.json", {})
        stamp = {"files": {n: i.get("size") for n, i in files.items()}, "zarr.json": _version(version)}
        stamp = json.loads(json.dumps(stamp, default=str, sort_keys=True))
        stamp_path = part.with_name(part.name + STAMP_SUFFIX)
        if _read_stamp(stamp_path) != stamp:
            _drop(part)
            stamp_path.unlink(missing_ok=True)
        relative = self._relative(part)
        for name, info in sorted(files.items()):
            if name.startswith(LAZY_PREFIX):
                self._lazy[f"{relative}/{name}"] = info.get("size")
            else:
                self._get(f"{relative}/{name}", info.get("size"))
        if not stamp_path.is_file():  # written last: an interrupted sync is redone, not trusted
            atomic_write_text(stamp_path, json.dumps(stamp, sort_keys=True))

    def _filesystem(self) -> AbstractFileSystem:
        if self._fs is None:
            import fsspec

            try:
                self._fs, self._base = fsspec.core.url_to_fs(self.url)
            except (ValueError, ImportError) as e:  # "Protocol not known: x", "Install s3fs to access S3"
                raise CacheError(f"{self.url}: {e}") from e
        return self._fs

    def _remote(self, relative: str) -> str:
        self._filesystem()
        return f"{self._base.rstrip('/')}/{relative}"

    def _relative(self, path: Path) -> str:
        relative = path.relative_to(self.root).as_posix()
        member_parts(relative)
        return relative

    def _list(self, relative: str, maxdepth: int | None = None) -> dict[str, dict]:
        """Every file under `relative` on the remote, by name relative to it; {} when there is none."""
        fs, remote = self._filesystem(), self._remote(relative)
        try:
            found = fs.find(remote, maxdepth=maxdepth, detail=True, withdirs=True)
        except FileNotFoundError:
            return {}
        except Exception as e:  # a backend's own error types (botocore, aiohttp, ...): one line naming the URL
            raise CacheError(f"{self.url}/{relative}: cannot list ({e})") from e
        files = {}
        for name, info in found.items():
            if name.rstrip("/") == remote:
                continue
            if not name.startswith(f"{remote}/"):
                raise CacheError(f"{name}: listed under {self.url}/{relative} but not inside it")
            inside = name[len(remote) + 1 :].rstrip("/")
            member_parts(inside)
            if info.get("islink") or info.get("type") not in ("file", "directory"):
                raise CacheError(f"{self.url}/{relative}/{inside}: a link or special file; it is not followed")
            if info["type"] == "file":
                files[inside] = info
        return files

    def _get(self, relative: str, size: int | None = None, refresh: bool = False) -> bool:
        """Copy one remote file into the mirror (atomically); False when the remote has no such file."""
        local = self.root / relative
        if local.is_file() and not refresh:
            return True
        try:
            source = self._filesystem().open(self._remote(relative), "rb")
        except FileNotFoundError:
            return False
        except Exception as e:
            raise CacheError(f"{self.url}/{relative}: cannot fetch ({e})") from e
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            with source, atomic_file(local) as target:
                shutil.copyfileobj(source, target, COPY_BYTES)
                if size is not None and target.tell() != size:  # raised before the rename: nothing is kept
                    raise CacheError(
                        f"{self.url}/{relative}: fetched {target.tell()} bytes, the listing says {size}; "
                        "the remote changed while it was read, run again"
                    )
        except OSError as e:
            if e.filename is not None and not Path(os.fsdecode(e.filename)).is_relative_to(self.root):
                raise CacheError(f"{self.url}/{relative}: cannot fetch ({e})") from e
            raise mirror_error(local, e) from e
        self.fetches += 1
        return True


_STORES: dict[tuple[str, Path], RemoteStore] = {}


def remote_store(url: str) -> RemoteStore:
    """The one `RemoteStore` of `url` in this process (so what it listed and fetched is shared)."""
    url = url.rstrip("/")
    # readable in error messages (they name mirrored parts), unique by the hash
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url).strip("-.")[:MIRROR_NAME_CHARS]
    root = mirror_base() / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    if (url, root) not in _STORES:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise mirror_error(root, e) from e
    return _STORES.setdefault((url, root), RemoteStore(url, root))


def mirror_error(path: Path, error: OSError) -> CacheError:
    """One line for a mirror that cannot be written: where, why, and the setting that moves it."""
    return CacheError(
        f"cannot write the local mirror {path}: {error.strerror or error}; "
        f"set ${REMOTE_CACHE_ENV} to a writable folder with free space"
    )


def open_root(root: Path | str) -> tuple[Path, LocalFiles]:
    """The local folder the reader looks in for cache `root`, and where its files come from."""
    if is_url(root):
        store = remote_store(str(root))
        return store.root, store
    return Path(root), LOCAL


def local_path(root: Path | str) -> Path:
    """The local folder holding cache `root` (its mirror for a URL), without listing the remote."""
    return open_root(root)[0]


def _version(info: dict) -> dict:
    return {k: info[k] for k in VERSION_KEYS if k in info}


def _read_stamp(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _drop(path: Path) -> None:
    """Remove a mirrored part or store: renamed aside first, so a reader sees it whole or not at all."""
    if path.is_dir() and not path.is_symlink():
        aside = temp_path(path)
        try:
            os.rename(path, aside)
        except FileNotFoundError:  # another process dropped it first
            return
        shutil.rmtree(aside)
    else:
        path.unlink(missing_ok=True)
