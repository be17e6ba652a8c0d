"""Where a task's audio shards come from: a local mirror of the hub layout, or the hub itself.

A data root mirrors the Hugging Face dataset repos' layout (``<root>/<Folder>/<split>/<shard>``),
so ``hf_hub_download(repo, path, local_dir=root)`` and a hand-made mirror look the same.

Downloads go through `huggingface_hub` and keep one shard as the unit of work: a shard appears under
the data root only once complete (the hub writes to a temporary file, then renames), so an
interrupted run loses at most the shards in flight, and a rerun skips every shard already present.
Within one download the hub resumes a broken stream itself (HTTP Range from the last whole 10 MiB
chunk, up to 5 times; tests/test_sources.py checks this); in huggingface_hub >= 1.0 a partial file
is deleted when the process fails, so across runs the shard is the unit of resumption. On top,
`with_retries` retries transient failures (timeouts, dropped connections, HTTP 408/429/5xx) with
exponential backoff; permanent ones (no such repo or file, gated repo, offline mode) fail at once
with a message naming the file, the repo and how to pre-download.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from xares_llm.cache.root import local_cache_root
from xares_llm.errors import DataError
from xares_llm.tasks.schema import Split, TaskConfig

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIES = 4  # extra attempts after a transient failure (5 in all)
BACKOFF_SECONDS = 2.0  # wait before the first retry; doubles each time
BACKOFF_MAX_SECONDS = 60.0  # cap on one wait
TRANSIENT_HTTP_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def default_data_root(cache_root: Path | str | None = None) -> Path:
    if os.environ.get("XARES_DATA"):
        return Path(os.environ["XARES_DATA"]).expanduser()
    return local_cache_root(cache_root) / "data"


def shard_paths(task: TaskConfig, split: Split, data_root: Path, download: bool = True) -> list[Path]:
    """Local paths of every shard of one split, fetching missing ones from the hub when allowed."""
    return [shard_path(task, relative, data_root, download) for relative in task.dataset.shards(split)]


def shard_path(task: TaskConfig, relative: str, data_root: Path, download: bool = True, quiet: bool = False) -> Path:
    """The local path of one shard (repo-relative path `relative`), fetched from the hub if missing."""
    local = data_root / relative
    if local.is_file():
        return local
    if task.dataset.repo is None or not download:
        hint = "" if task.dataset.repo is None else f"; fetch it with `xares download --tasks {task.name}`"
        raise DataError(f"shard {relative} of task {task.name!r} is missing under {data_root}{hint}")
    return fetch_shard(task.dataset.repo, relative, data_root, task=task.name, quiet=quiet)


def fetch_shard(
    repo: str,
    relative: str,
    data_root: Path,
    *,
    task: str | None = None,
    quiet: bool = False,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_SECONDS,
    suggest_download: bool = True,
) -> Path:
    """Download one shard of a hub dataset repo into `data_root`, keeping the repo layout.

    `quiet` hides the hub's own per-file progress bar (for callers that draw their own);
    `suggest_download=False` (from `xares download` itself) leaves that command out of the advice.
    """
    from huggingface_hub import hf_hub_download

    kwargs = {"tqdm_class": _silent_tqdm()} if quiet else {}

    def call() -> Path:
        return Path(hf_hub_download(repo, relative, repo_type="dataset", local_dir=data_root, **kwargs))

    return with_retries(
        call, repo, relative, data_root, task=task, retries=retries, backoff_s=backoff_s,
        suggest_download=suggest_download,
    )  # fmt: skip


def with_retries(
    call: Callable[[], T],
    repo: str,
    relative: str,
    data_root: Path,
    *,
    task: str | None = None,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_SECONDS,
    suggest_download: bool = True,
) -> T:
    """Run one hub request, retrying transient failures with exponential backoff.

    Any failure left at the end becomes a `DataError` naming `relative` (a file, or a description
    of several), the repo and how to pre-download.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as e:
            if not is_hub_error(e):
                raise
            transient = is_transient(e)
            if not transient or attempt == retries:
                raise DataError(
                    download_failure(
                        e, repo, relative, data_root, task=task, attempts=attempt + 1, transient=transient,
                        suggest_download=suggest_download,
                    )
                ) from e  # fmt: skip
            wait = min(backoff_s * 2**attempt, BACKOFF_MAX_SECONDS)
            log.warning("%s from %s failed (%s); retry %d/%d in %.0f s", relative, repo, e, attempt + 1, retries, wait)
            time.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def is_hub_error(error: BaseException) -> bool:
    """Errors a hub request can raise that we turn into a `DataError` (anything else is a bug)."""
    from huggingface_hub.errors import EntryNotFoundError

    return isinstance(error, (OSError, EntryNotFoundError, *_network_errors()))


def is_transient(error: BaseException) -> bool:
    """True when retrying may help: a network failure, a timeout or HTTP 408/429/5xx.

    The hub wraps "could not reach the server and the file is not cached" in
    `LocalEntryNotFoundError`, so the cause chain is searched too.
    """
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OfflineModeIsEnabled):
            return False
        if isinstance(seen, HfHubHTTPError):
            status = seen.response.status_code if seen.response is not None else None
            return status in TRANSIENT_HTTP_STATUS
        if isinstance(seen, (TimeoutError, ConnectionError, *_network_errors())):
            return True
        if isinstance(seen, OSError) and "Consistency check failed" in str(seen):  # truncated body
            return True
        if isinstance(seen, EntryNotFoundError) and seen.__cause__ is None:
            return False
        seen = seen.__cause__ or seen.__context__
    return False


def download_failure(
    error: BaseException,
    repo: str,
    relative: str,
    data_root: Path,
    *,
    task: str | None = None,
    attempts: int = 1,
    transient: bool = False,
    suggest_download: bool = True,
) -> str:
    """One message: what failed, why in words, and how to get the file another way."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    chain = _cause_chain(error)
    if any(isinstance(e, OfflineModeIsEnabled) for e in chain) or _offline():
        why = "HF_HUB_OFFLINE is set, so nothing can be downloaded"
    elif any(isinstance(e, GatedRepoError) for e in chain):
        why = "the repo is gated: accept its terms on the hub and log in with `hf auth login`"
    elif any(isinstance(e, RepositoryNotFoundError) for e in chain):
        why = "the repo was not found or needs a login (`hf auth login`)"
    elif any(isinstance(e, RemoteEntryNotFoundError) for e in chain):
        why = "the repo has no such file; check the task's shard patterns"
    else:
        http = next((e for e in chain if isinstance(e, HfHubHTTPError) and e.response is not None), None)
        detail = f"HTTP {http.response.status_code}" if http is not None else type(error).__name__
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        why = f"{detail}: {first_line}" if first_line else detail
        if transient:
            why += f" (gave up after {attempts} attempts)"
    ways = []
    if suggest_download:  # not from `xares download`, which just failed
        ways.append(
            f"`xares download --tasks {task} --data {data_root}`" if task else "`xares download --tasks <task>`"
        )
    if " " not in relative:  # one file: the hub's own CLI can fetch exactly it
        ways.append(f"`hf download {repo} {relative} --repo-type dataset --local-dir {data_root}`")
    offline = "HF_HUB_OFFLINE" in why
    where = " on a connected machine (then copy the files here)" if offline else ""
    how = f"Pre-download with {' or '.join(ways)}{where}, or point" if ways else "Point"
    if offline and not suggest_download:
        how = f"Unset HF_HUB_OFFLINE, or run this on a connected machine and copy {data_root} here, or point"
    mirror = "--data / XARES_DATA at a local mirror of the repo layout"
    return f"could not download {relative} from dataset repo {repo}: {why}. {how} {mirror}."


def _cause_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level error classes of whichever HTTP client huggingface_hub uses (httpx2 in >= 1.0)."""
    classes: list[type[BaseException]] = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "RequestException")):
        try:
            classes.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(classes)


def _silent_tqdm() -> type:
    """A tqdm class that never draws: the hub's per-file bar off, for callers with their own."""
    from tqdm.auto import tqdm

    class Silent(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent
