"""Clip embeddings pooled from the valid frames, computed once per split and cached beside the store.

::

    <cache>/features/<encoder-id>/.probe/<dataset>@<split>-<key>.npy    (n_clips, 2 * D) float32: mean | std
    <cache>/features/<encoder-id>/.probe/<dataset>@<split>-<key>.json   counts and the key's inputs

The key hashes the encoder fingerprint and every part's name, source checksum, clip and frame counts
and creation time, so a re-extracted or added part gives a new key; older files of the same split
are removed when a new one is written. The folder is flat (no <dataset>/<split> folders that store
listings would count) and nothing is written inside a part directory; '@' never occurs in a dataset name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xares_llm.cache import FeatureSplit, read_encoder_info, read_part_attrs
from xares_llm.cache.atomic import atomic_file, atomic_write_text
from xares_llm.cache.format import DERIVED_DIR, encoder_dir
from xares_llm.cache.remote import local_path

PROBE_DIR = DERIVED_DIR
POOLINGS = ("mean", "meanstd")
KEY_CHARS = 16


@dataclass
class Pooled:
    """Mean and std of each clip's finite frames, in store order."""

    stats: np.ndarray  # (n_clips, 2 * D) float32: the mean, then the std
    empty: int  # clips without any finite frame: zero vectors
    nonfinite_frames: int  # frames holding NaN or Inf, left out of their clip's mean and std
    cache: str  # "hit", "written", or why it was not written

    @property
    def dim(self) -> int:
        return self.stats.shape[1] // 2

    def embeddings(self, pooling: str) -> np.ndarray:
        """`mean` -> (n, D); `meanstd` -> (n, 2 * D)."""
        return self.stats[:, : self.dim] if pooling == "mean" else self.stats

    def counts(self) -> dict:
        return {"empty_clips": self.empty, "nonfinite_frames": self.nonfinite_frames, "embedding_cache": self.cache}


def store_key(cache_root: Path | str, encoder_id: str, store: FeatureSplit) -> tuple[str, dict]:
    """A hash of what the pooled statistics depend on, and the inputs it hashes."""
    info = read_encoder_info(cache_root, encoder_id)
    parts = []
    for path in store.parts:
        attrs = read_part_attrs(path)
        if attrs is None:  # completed parts only; one vanishing mid-read changes the key next time
            continue
        parts.append([path.name, attrs.source.sha256, attrs.n_clips, attrs.n_frames, attrs.created])
    inputs = {"fingerprint": info.fingerprint if info else None, "parts": parts}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return digest[:KEY_CHARS], inputs


def cache_folder(cache_root: Path | str, encoder_id: str) -> Path:
    """Beside the store; for a URL store, beside its local mirror (the remote is never written)."""
    return encoder_dir(local_path(cache_root), encoder_id) / PROBE_DIR


def pool_split(store: FeatureSplit) -> Pooled:
    """Read every clip once, in order (neighbouring clips share chunks), and pool its finite frames."""
    n = len(store)
    dim = store.frames(0).shape[1] if n else 0
    stats = np.zeros((n, 2 * dim), dtype=np.float32)
    empty = nonfinite = 0
    for index in range(n):
        frames = store.frames(index).astype(np.float32, copy=False)
        finite = np.isfinite(frames).all(axis=1)
        if not finite.all():
            nonfinite += int((~finite).sum())
            frames = frames[finite]
        if len(frames) == 0:
            empty += 1
            continue
        frames = frames.astype(np.float64)
        stats[index, :dim] = frames.mean(axis=0)
        stats[index, dim:] = frames.std(axis=0)
    return Pooled(stats, empty, nonfinite, "")


def pooled_split(cache_root: Path | str, encoder_id: str, dataset: str, split: str, store: FeatureSplit) -> Pooled:
    """The split's pooled statistics from the cache file when its key matches, else computed and cached."""
    key, inputs = store_key(cache_root, encoder_id, store)
    folder, stem = cache_folder(cache_root, encoder_id), f"{dataset}@{split}"
    array_path, info_path = folder / f"{stem}-{key}.npy", folder / f"{stem}-{key}.json"
    cached = read_cache(array_path, info_path, len(store))
    if cached is not None:
        return cached
    pooled = pool_split(store)
    try:
        write_cache(folder, stem, key, pooled, inputs)
        pooled.cache = "written"
    except OSError as e:  # a read-only shared cache still probes, it just pools again next time
        pooled.cache = f"not written: {e.strerror or e}"
    return pooled


def read_cache(array_path: Path, info_path: Path, n_clips: int) -> Pooled | None:
    """The cached statistics when both files are whole and agree with the split; None (pool again) otherwise.

    The array is mapped, not read, until its header's shape and dtype are checked, so a header
    claiming more rows than the split has costs nothing.
    """
    try:
        counts = json.loads(info_path.read_text(encoding="utf-8"))
        stats = np.load(array_path, mmap_mode="r", allow_pickle=False)
    except Exception:  # absent, not JSON, not an .npy (numpy parses its header as Python literals and raises
        return None  # SyntaxError, TokenError, ValueError...): a miss either way, pooled again and rewritten
    fields = [counts.get(k) for k in ("empty", "nonfinite_frames", "n_clips")] if isinstance(counts, dict) else [None]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in fields) or fields[2] != n_clips:
        return None
    if stats.dtype != np.float32 or stats.ndim != 2 or stats.shape[0] != n_clips or stats.shape[1] % 2:
        return None
    return Pooled(np.array(stats), fields[0], fields[1], "hit")


def write_cache(folder: Path, stem: str, key: str, pooled: Pooled, inputs: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{stem}-*"):
        if not old.name.startswith(f"{stem}-{key}"):
            old.unlink(missing_ok=True)
    with atomic_file(folder / f"{stem}-{key}.npy") as f:
        np.save(f, pooled.stats, allow_pickle=False)
    info = {"empty": pooled.empty, "nonfinite_frames": pooled.nonfinite_frames, "n_clips": len(pooled.stats)}
    atomic_write_text(folder / f"{stem}-{key}.json", json.dumps(info | {"key_inputs": inputs}, indent=2))
