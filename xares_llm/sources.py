"""Where a task's audio shards come from: a local mirror of the hub layout, or the hub itself.

A data root mirrors the Hugging Face dataset repos' layout (``<root>/<Folder>/<split>/<shard>``),
so ``snapshot_download(repo, local_dir=root)`` and a hand-made mirror look the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from xares_llm.errors import DataError
from xares_llm.tasks import Split, TaskConfig


def default_cache_root() -> Path:
    return Path(os.environ.get("XARES_CACHE") or Path.home() / ".cache" / "xares").expanduser()


def default_data_root(cache_root: Path | None = None) -> Path:
    if os.environ.get("XARES_DATA"):
        return Path(os.environ["XARES_DATA"]).expanduser()
    return (cache_root or default_cache_root()) / "data"


def shard_paths(task: TaskConfig, split: Split, data_root: Path, download: bool = True) -> list[Path]:
    """Local paths of every shard of one split, fetching missing ones from the hub when allowed."""
    paths = []
    for relative in task.dataset.shards(split):
        local = data_root / relative
        if not local.is_file():
            if task.dataset.repo is None or not download:
                raise DataError(
                    f"shard {relative} of task {task.name!r} is missing under {data_root}"
                    + ("" if task.dataset.repo is None else f"; fetch it with `xares download --tasks {task.name}`")
                )
            local = fetch_shard(task.dataset.repo, relative, data_root)
        paths.append(local)
    return paths


def fetch_shard(repo: str, relative: str, data_root: Path) -> Path:
    """Download one shard of a hub dataset repo into `data_root` (resumable, keeps the repo layout)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo, relative, repo_type="dataset", local_dir=data_root))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        raise DataError(
            f"could not download {relative} from dataset repo {repo}: {e}. Pre-download with "
            f"`huggingface-cli download --repo-type dataset {repo} {relative} --local-dir {data_root}` "
            "or point --data at a local mirror."
        ) from e
