"""Pre-fetch the audio shards of some tasks into a data root, so that extraction runs offline.

Only the shards the tasks name are fetched (never a whole repo: NSynth alone is about 24 GB), one
file at a time per worker through `sources.fetch_shard` (retries, clear errors). A shard already
under the data root is skipped, so an interrupted download continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from xares_llm.audio.sources import BACKOFF_SECONDS, RETRIES, fetch_shard, with_retries
from xares_llm.constants import DOWNLOAD_WORKERS
from xares_llm.errors import ConfigError, DataError
from xares_llm.tasks.schema import SPLITS, Split, TaskConfig

PATHS_INFO_BATCH = 100  # paths per hub `paths-info` request when sizing a download
DEFAULT_WORKERS = DOWNLOAD_WORKERS


@dataclass(frozen=True)
class Shard:
    """One file to have locally: `relative` inside dataset repo `repo`, stored at `local`."""

    task: str
    repo: str
    relative: str
    local: Path


@dataclass
class DownloadPlan:
    """Every shard some tasks need, which are present, and the size of those missing (bytes)."""

    data_root: Path
    shards: list[Shard]
    sizes: dict[Shard, int]  # remote size in bytes of each missing shard
    local_only: list[str]  # tasks without a hub repo (generated locally): nothing to fetch

    @property
    def missing(self) -> list[Shard]:
        return [s for s in self.shards if not s.local.is_file()]

    @property
    def present(self) -> list[Shard]:
        return [s for s in self.shards if s.local.is_file()]

    @property
    def bytes_missing(self) -> int:
        return sum(self.sizes.get(s, 0) for s in self.missing)

    def bytes_on_disk(self) -> int:
        return sum(s.local.stat().st_size for s in self.present)


def parse_splits(text: str) -> tuple[Split, ...]:
    """``"train,test"`` -> the splits, in the canonical order; anything else is a `ConfigError`."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPLITS]
    if unknown or not names:
        raise ConfigError(f"unknown split {', '.join(unknown) or repr(text)}: use train, test or train,test")
    return tuple(s for s in SPLITS if s in names)


def plan_download(
    tasks: Sequence[TaskConfig],
    splits: Sequence[Split],
    data_root: Path,
    *,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_SECONDS,
) -> DownloadPlan:
    """List the shards of `tasks` x `splits` (each file once) and size the missing ones on the hub.

    The hub is asked only when something is missing, so a complete mirror plans offline. A shard
    pattern naming a file the repo lacks fails here, before anything is downloaded.
    """
    shards: dict[tuple[str, str], Shard] = {}
    local_only = []
    for task in tasks:
        if task.dataset.repo is None:
            local_only.append(task.name)
            continue
        for split in splits:
            for relative in task.dataset.shards(split):
                key = (task.dataset.repo, relative)
                shards.setdefault(key, Shard(task.name, task.dataset.repo, relative, data_root / relative))
    plan = DownloadPlan(data_root, list(shards.values()), {}, local_only)
    plan.sizes = remote_sizes(plan.missing, data_root, retries=retries, backoff_s=backoff_s)
    return plan


def remote_sizes(
    shards: Sequence[Shard], data_root: Path, *, retries: int = RETRIES, backoff_s: float = BACKOFF_SECONDS
) -> dict[Shard, int]:
    """Size in bytes of each shard on the hub, batched per repo; a file the repo lacks is a `DataError`."""
    from huggingface_hub import HfApi

    api = HfApi()
    sizes: dict[Shard, int] = {}
    by_repo: dict[str, list[Shard]] = {}
    for shard in shards:
        by_repo.setdefault(shard.repo, []).append(shard)
    for repo, group in by_repo.items():
        for start in range(0, len(group), PATHS_INFO_BATCH):
            batch = group[start : start + PATHS_INFO_BATCH]
            what = batch[0].relative + (f" (and {len(batch) - 1} more)" if len(batch) > 1 else "")
            infos = with_retries(
                lambda batch=batch, repo=repo: api.get_paths_info(
                    repo, [s.relative for s in batch], repo_type="dataset"
                ),
                repo,
                what,
                data_root,
                task=batch[0].task,
                retries=retries,
                backoff_s=backoff_s,
                suggest_download=False,
            )
            found = {info.path: getattr(info, "size", None) for info in infos}
            absent = [s for s in batch if found.get(s.relative) is None]
            if absent:
                raise DataError(
                    f"dataset repo {repo} has no file {absent[0].relative} (task {absent[0].task!r}"
                    + (f", and {len(absent) - 1} more" if len(absent) > 1 else "")
                    + "): check the task's shard patterns"
                )
            sizes.update({s: int(found[s.relative]) for s in batch})
    return sizes


def run_download(
    plan: DownloadPlan,
    *,
    workers: int = DEFAULT_WORKERS,
    on_done: Callable[[Shard, int], None] | None = None,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_SECONDS,
) -> list[Shard]:
    """Fetch every missing shard of `plan`, `workers` at a time; returns those fetched.

    `on_done(shard, size_bytes)` runs (in a worker thread) after each file lands. The first
    failure stops the queue and is raised as a `DataError`; shards already fetched stay.
    """
    missing = plan.missing
    if not missing:
        return []

    def fetch(shard: Shard) -> Shard:
        path = fetch_shard(
            shard.repo,
            shard.relative,
            plan.data_root,
            task=shard.task,
            quiet=True,
            retries=retries,
            backoff_s=backoff_s,
            suggest_download=False,
        )
        if on_done is not None:
            on_done(shard, path.stat().st_size)
        return shard

    done: list[Shard] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="xares-download") as pool:
        futures = [pool.submit(fetch, shard) for shard in missing]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None:
                raise error
            done.append(future.result())
    return done


def format_bytes(n: int) -> str:
    """1536 -> '1.5 KB' (decimal units, as the hub shows sizes)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
