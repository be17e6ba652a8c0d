"""Move whole encoder stores between caches: a Hugging Face dataset repo or any fsspec URL.

``hf://datasets/<owner>/<name>`` goes through huggingface_hub; anything else (a local path,
``file://``, ``s3://``, ...) through fsspec. Only what a store holds moves: encoder.json, the
extraction profile and the files of its parts, each a regular file under a plain relative name. A
symlink, a hard link, an absolute name, a ``..`` component or anything outside that layout is
refused before it is copied, so a store from elsewhere cannot carry other files into the cache (nor
the next push carry them out). Temp parts, temp files and lock files of an extraction still running
are left out, and counted.

A pulled store lands in a temp dir, is verified chunk by chunk (crc32c) and only then renamed into
the cache, so a refused or damaged copy never becomes visible and leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import (
    DERIVED_DIR,
    ENCODER_FILE,
    FORMAT,
    LOCK_SUFFIX,
    PART_SUFFIX,
    TMP_MARKER,
    check_encoder_id,
    encoder_dir,
    features_root,
    member_parts,
)
from xares_llm.cache.locks import PartLock
from xares_llm.cache.metadata import read_encoder_file
from xares_llm.cache.profile import PROFILE_FILE
from xares_llm.cache.verify import PartPlan, verify_encoder_file, verify_store

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

HF_PREFIX = "hf://datasets/"
STORE_FILES = ((ENCODER_FILE,), (PROFILE_FILE,))  # the files at the top of a store folder
STAGING_PREFIX = ".pull-"  # <cache>/features/.pull-<encoder-id>-<id>/: a pull in progress, with its .lock
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@dataclass
class Transfer:
    """Where a store went, how many files moved, and what was left out (temp parts, locks)."""

    path: Path | str
    files: int
    left_out: list[str]


@dataclass
class Members:
    """The files a transfer copies, by name relative to the store, and the in-flight entries it skips."""

    files: list[str] = field(default_factory=list)
    left_out: set[str] = field(default_factory=set)

    def add(self, name: str) -> None:
        parts = member_parts(name)
        if parts[0] == DERIVED_DIR:
            self.left_out.add(DERIVED_DIR)
        elif in_flight(parts):
            self.left_out.add("/".join(parts[:3]))
        elif parts in STORE_FILES or (len(parts) > 3 and parts[2].endswith(PART_SUFFIX)):
            self.files.append(name)
        else:
            raise CacheError(
                f"{name}: not part of a {FORMAT} store (only {ENCODER_FILE}, {PROFILE_FILE} and "
                "<dataset>/<split>/part-*.zarr/...)"
            )


def in_flight(parts: tuple[str, ...]) -> bool:
    """A temp part, lock file or temp store file (encoder.json, the profile) of an extraction that is running
    (or was killed)."""
    if len(parts) == 1:
        return any(parts[0].startswith(name + TMP_MARKER) for (name,) in STORE_FILES)
    return len(parts) >= 3 and (TMP_MARKER in parts[2] or parts[2].endswith(LOCK_SUFFIX))


def local_members(store: Path) -> Members:
    """Every file of the store folder `store`; a link or special file anywhere in it is refused."""
    for path in (store.parent, store):
        if path.is_symlink():
            raise CacheError(f"{path} is a symlink; a store is copied only from plain folders")
    members = Members()
    pending: list[tuple[str, ...]] = [()]
    while pending:
        folder = pending.pop()
        with os.scandir(store.joinpath(*folder)) as entries:
            for entry in entries:
                parts = (*folder, entry.name)
                name = "/".join(parts)
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    if in_flight(member_parts(name)):
                        members.left_out.add(name)
                    else:
                        pending.append(parts)
                    continue
                _check_plain_file(store / name, info)
                members.add(name)
    members.files.sort()
    return members


def _check_plain_file(path: Path, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise CacheError(f"{path} is a symlink; a store holds only plain files, refusing to copy it")
    if not stat.S_ISREG(info.st_mode):
        raise CacheError(f"{path} is not a regular file; refusing to copy it")
    if info.st_nlink > 1:
        raise CacheError(f"{path} is a hard link ({info.st_nlink} names for one file); refusing to copy it")


@contextmanager
def open_plain(path: Path) -> Iterator[IO[bytes]]:
    """Open a listed file for reading without following a symlink swapped in since it was listed."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise CacheError(f"{path} is a symlink; a store holds only plain files, refusing to copy it") from e
        raise
    with os.fdopen(fd, "rb") as f:
        _check_plain_file(path, os.fstat(f.fileno()))
        yield f


def fsspec_members(fs: AbstractFileSystem, remote: str) -> Members:
    """Every file under `remote` on a non-local fsspec filesystem, by name relative to it."""
    members = Members()
    prefix = remote.rstrip("/") + "/"
    for name, info in sorted(fs.find(remote, withdirs=True, detail=True).items()):
        if name.rstrip("/") == remote.rstrip("/"):
            continue
        if not name.startswith(prefix):
            raise CacheError(f"{name}: listed under {remote} but not inside it")
        relative = name[len(prefix) :]
        if info.get("islink") or info.get("type") not in ("file", "directory"):
            raise CacheError(f"{name} is a {info.get('type')} link or special file; refusing to copy it")
        if info["type"] == "file":
            members.add(relative)
        else:
            member_parts(relative)
    members.files.sort()
    return members


def _hf_repo(url: str) -> tuple[str, str]:
    """``hf://datasets/owner/name[/sub/dir]`` -> (``owner/name``, ``sub/dir``)."""
    parts = url.removeprefix(HF_PREFIX).strip("/").split("/")
    if len(parts) < 2:
        raise CacheError(f"{url}: expected hf://datasets/<owner>/<name>[/folder]")
    folder = "/".join(parts[2:])
    if folder:
        member_parts(folder)
    return "/".join(parts[:2]), folder


def _remote_store(prefix: str, encoder_id: str) -> str:
    return "/".join(p for p in (prefix, "features", encoder_id) if p)


def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem of `url`; an unknown protocol or a missing backend is one line."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as e:  # "Protocol not known: x", "Install s3fs to access S3"
        raise CacheError(f"{url}: {e}") from e


def _local_fs(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def push(root: Path, encoder_id: str, destination: str) -> Transfer:
    """Copy ``<root>/features/<encoder_id>`` (verified first) to `destination`."""
    check_encoder_id(encoder_id)
    local = encoder_dir(root, encoder_id)
    if not (local / ENCODER_FILE).is_file():
        raise CacheError(f"no store {encoder_id} in {root}")
    bad = [r for r in [verify_encoder_file(root, encoder_id), *verify_store(root, encoder_id)] if not r.ok]
    if bad:
        raise CacheError(f"{len(bad)} parts fail verification, refusing to push: {bad[0].path}: {bad[0].problems[0]}")
    members = local_members(local)
    try:
        where = _push_files(local, members.files, encoder_id, destination)
    except OSError as e:
        raise CacheError(f"cannot push to {destination}: {e}") from e
    return Transfer(where, len(members.files), sorted(members.left_out))


def _push_files(local: Path, files: list[str], encoder_id: str, destination: str) -> str:
    if destination.startswith(HF_PREFIX):
        from huggingface_hub import CommitOperationAdd, HfApi

        repo, prefix = _hf_repo(destination)
        remote = _remote_store(prefix, encoder_id)
        api = HfApi()
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        operations = [CommitOperationAdd(f"{remote}/{name}", str(local / name)) for name in files]
        api.create_commit(repo, operations, commit_message=f"xares cache push {encoder_id}", repo_type="dataset")
        return f"{HF_PREFIX}{repo}/{remote}"
    fs, path = _filesystem(destination)
    target = _remote_store(path.rstrip("/"), encoder_id)
    made: set[str] = set()
    for name in files:
        folder = f"{target}/{name}".rsplit("/", 1)[0]
        if folder not in made:
            fs.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open_plain(local / name) as src, fs.open(f"{target}/{name}", "wb") as out:
            shutil.copyfileobj(src, out)
    return target


def pull(root: Path, encoder_id: str, source: str, plan: Callable[[Path], PartPlan] | None = None) -> Transfer:
    """Fetch one encoder store from `source` into the cache at `root`, verified before it appears.

    `plan` gives, for the fetched store folder, the parts each dataset/split folder must hold (from the
    task configs): a share missing a part is refused like a damaged one.
    """
    check_encoder_id(encoder_id)
    final = encoder_dir(root, encoder_id)
    if final.exists():
        raise CacheError(f"{final} exists already; remove it first or pull into another --cache")
    try:
        fetch = (_hf_fetcher if source.startswith(HF_PREFIX) else _fsspec_fetcher)(source, encoder_id)
    except OSError as e:
        raise CacheError(f"cannot read {source}: {e}") from e
    with _staging(root, encoder_id, source) as staging:
        store = staging / "features" / encoder_id
        members = fetch(store)
        planned = plan(store) if plan is not None else None
        reports = [verify_encoder_file(staging, encoder_id), *verify_store(staging, encoder_id, planned)]
        bad = [r for r in reports if not r.ok]
        if bad:
            first = bad[0]
            raise CacheError(
                f"pulled store is damaged ({len(bad)} parts), nothing kept: {first.path.name}: {first.problems[0]}"
            )
        store.rename(final)
    return Transfer(final, len(members.files), sorted(members.left_out))


def _fsspec_fetcher(source: str, encoder_id: str) -> Callable[[Path], Members]:
    """List and check the store at `source` now (nothing is written yet); copy it when called."""
    fs, path = _filesystem(source)
    remote = _remote_store(path.rstrip("/"), encoder_id)
    if not fs.isfile(f"{remote}/{ENCODER_FILE}"):
        raise CacheError(f"no store {encoder_id} at {source} (looked for {remote}/{ENCODER_FILE})")
    local = _local_fs(fs)
    members = local_members(Path(remote)) if local else fsspec_members(fs, remote)

    def fetch(store: Path) -> Members:
        # encoder.json first: a store of another format is refused before its parts are copied
        for name in sorted(members.files, key=lambda n: n != ENCODER_FILE):
            (store / name).parent.mkdir(parents=True, exist_ok=True)
            source_file = open_plain(Path(remote, name)) if local else fs.open(f"{remote}/{name}", "rb")
            with source_file as src, open(store / name, "xb") as out:
                shutil.copyfileobj(src, out)
            if name == ENCODER_FILE:
                read_encoder_file(store / name)
        return members

    return fetch


def _hf_fetcher(source: str, encoder_id: str) -> Callable[[Path], Members]:
    """List and check the repo's file names now (nothing is written yet); download and check when called."""
    from huggingface_hub import HfApi, snapshot_download

    repo, prefix = _hf_repo(source)
    remote = _remote_store(prefix, encoder_id)
    listed = Members()
    for name in HfApi().list_repo_files(repo, repo_type="dataset"):
        if name.startswith(f"{remote}/"):
            listed.add(name.removeprefix(f"{remote}/"))
    if ENCODER_FILE not in listed.files:
        raise CacheError(f"no store {encoder_id} at {source} (looked for {remote}/{ENCODER_FILE})")

    def fetch(store: Path) -> Members:
        download = store.parent.parent / "download"
        snapshot_download(repo, repo_type="dataset", allow_patterns=[f"{remote}/**"], local_dir=download)
        members = local_members(download / remote)  # what landed on disk, checked again: no links
        for name in members.left_out:
            if (download / remote / name).is_dir():
                shutil.rmtree(download / remote / name)
            else:
                (download / remote / name).unlink()
        store.parent.mkdir(parents=True)
        (download / remote).rename(store)
        return members

    return fetch


@contextmanager
def _staging(root: Path, encoder_id: str, source: str) -> Iterator[Path]:
    """A temp dir inside the cache for one pull. Whatever happens it is removed, and so are the folders
    made for it unless the pull succeeded; an OSError becomes one line naming the path."""
    base = features_root(root)
    made = []  # the folders this pull creates, innermost first
    for folder in (base, *base.parents):
        if folder.exists():
            break
        made.append(folder)
    staging, lock = None, None
    try:
        base.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(base)
        name = base / f"{STAGING_PREFIX}{encoder_id}-{uuid.uuid4().hex[:12]}"
        lock = PartLock(name)  # held while the staging dir exists: `remove_stale_staging` leaves it alone
        if not lock.acquire():
            raise CacheError(f"{lock.path} is held by another pull; run again")
        name.mkdir()
        staging = name
        yield staging
    except OSError as e:
        raise _io_error(e, root, source) from e
    else:
        made = []
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if lock is not None:
            lock.release()
        for folder in made:
            with suppress(OSError):  # not empty: something else wrote there meanwhile
                folder.rmdir()


def remove_stale_staging(base: Path) -> int:
    """Remove the staging dirs of pulls that were killed (no live holder of their lock); returns how many."""
    removed = 0
    for path in sorted(base.glob(f"{STAGING_PREFIX}*")):
        if not path.is_dir() or path.is_symlink():
            continue
        lock = PartLock(path)
        if lock.acquire():
            try:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            finally:
                lock.release()
    return removed


def _io_error(e: OSError, root: Path, source: str) -> CacheError:
    """One line for a failed read of the source or write into the cache, with what to do about it."""
    filename = os.fsdecode(e.filename) if e.filename is not None else None
    inside = filename is not None and Path(os.path.abspath(filename)).is_relative_to(os.path.abspath(root))
    if inside or e.errno in DISK_FULL:
        return CacheError(
            f"cannot write {filename or root}: {e.strerror or e}; pull into a writable --cache with free space"
        )
    return CacheError(f"cannot read {source}: {e}")
