"""Move whole encoder stores between caches: a Hugging Face dataset repo or any fsspec URL.

``hf://datasets/<owner>/<name>`` goes through huggingface_hub (upload_folder / snapshot_download);
anything else (a local path, ``s3://``, ``gs://``, ...) through fsspec. A pulled store lands in a
temp dir, is verified chunk by chunk (crc32c) and only then renamed into the cache, so a damaged
copy never becomes visible.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import ENCODER_FILE, encoder_dir, features_root
from xares_llm.cache.verify import verify_store

HF_PREFIX = "hf://datasets/"


def _hf_repo(url: str) -> tuple[str, str]:
    """``hf://datasets/owner/name[/sub/dir]`` -> (``owner/name``, ``sub/dir``)."""
    parts = url.removeprefix(HF_PREFIX).strip("/").split("/")
    if len(parts) < 2:
        raise CacheError(f"{url}: expected hf://datasets/<owner>/<name>[/folder]")
    return "/".join(parts[:2]), "/".join(parts[2:])


def _remote_store(prefix: str, encoder_id: str) -> str:
    return "/".join(p for p in (prefix, "features", encoder_id) if p)


def push(root: Path, encoder_id: str, destination: str) -> str:
    """Copy ``<root>/features/<encoder_id>`` to `destination`; returns where it went."""
    local = encoder_dir(root, encoder_id)
    if not (local / ENCODER_FILE).is_file():
        raise CacheError(f"no store {encoder_id} in {root}")
    bad = [r for r in verify_store(root, encoder_id) if not r.ok]
    if bad:
        raise CacheError(f"{len(bad)} parts fail verification, refusing to push: {bad[0].path}: {bad[0].problems[0]}")
    if destination.startswith(HF_PREFIX):
        from huggingface_hub import HfApi

        repo, prefix = _hf_repo(destination)
        api = HfApi()
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        api.upload_folder(
            repo_id=repo, repo_type="dataset", folder_path=str(local), path_in_repo=_remote_store(prefix, encoder_id)
        )
        return f"{HF_PREFIX}{repo}/{_remote_store(prefix, encoder_id)}"
    import fsspec

    fs, path = fsspec.core.url_to_fs(destination)
    target = _remote_store(path.rstrip("/"), encoder_id)
    fs.makedirs(target, exist_ok=True)
    fs.put(str(local) + "/", target + "/", recursive=True)
    return target


def pull(root: Path, encoder_id: str, source: str) -> Path:
    """Fetch one encoder store from `source` into the cache at `root`, verified before it appears."""
    final = encoder_dir(root, encoder_id)
    if final.exists():
        raise CacheError(f"{final} exists already; remove it first or pull into another --cache")
    features_root(root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".pull-{encoder_id}-", dir=features_root(root)))
    try:
        if source.startswith(HF_PREFIX):
            from huggingface_hub import snapshot_download

            repo, prefix = _hf_repo(source)
            remote = _remote_store(prefix, encoder_id)
            snapshot_download(repo, repo_type="dataset", allow_patterns=[f"{remote}/**"], local_dir=staging)
            fetched = staging / remote
        else:
            import fsspec

            fs, path = fsspec.core.url_to_fs(source)
            remote = _remote_store(path.rstrip("/"), encoder_id)
            if not fs.exists(f"{remote}/{ENCODER_FILE}"):
                raise CacheError(f"no store {encoder_id} at {source} (looked for {remote}/{ENCODER_FILE})")
            fetched = staging / "features" / encoder_id
            fetched.mkdir(parents=True)
            fs.get(remote + "/", str(fetched) + "/", recursive=True)
        if not (fetched / ENCODER_FILE).is_file():
            raise CacheError(f"no store {encoder_id} at {source}")
        bad = [r for r in verify_store(fetched.parent.parent, encoder_id) if not r.ok]
        if bad:
            first = bad[0]
            raise CacheError(
                f"pulled store is damaged ({len(bad)} parts), nothing kept: {first.path.name}: {first.problems[0]}"
            )
        shutil.move(str(fetched), str(final))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
