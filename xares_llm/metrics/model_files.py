"""Find the model files FENSE and DATE need, and say whether they are the official ones.

Order: an explicit local path (`MetricOptions`, else $XARES_SBERT / $XARES_ECHECKER), then the
Hugging Face hub (Sentence-BERT, and the error checker's bert-base-uncased config and tokenizer),
then the error checker itself, a GitHub release asset downloaded once into ``<cache>/metrics/`` with
its sha256 checked. Every resolution records what it used, so a score computed with a substitute
can never pass for an official one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from xares_llm.cache.atomic import atomic_file
from xares_llm.metrics.base import MetricError

log = logging.getLogger(__name__)

OFFICIAL_SBERT = "sentence-transformers/paraphrase-TinyBERT-L6-v2"  # the reference's FENSE and DATE model
OFFICIAL_ECHECKER_FILE = "echecker_clotho_audiocaps_base.ckpt"  # fense V0.1 release asset
OFFICIAL_ECHECKER_URL = f"https://github.com/blmoistawinde/fense/releases/download/V0.1/{OFFICIAL_ECHECKER_FILE}"
OFFICIAL_ECHECKER_SHA256 = "1a719f090af70614bbdb9f9437530b7e133c48cfa4a58d964de0d47fc974a2fa"
NO_ECHECKER = "none"  # explicit opt-out: no fluency penalty, recorded as unofficial
SBERT_ENV = "XARES_SBERT"
ECHECKER_ENV = "XARES_ECHECKER"
METRICS_SUBDIR = "metrics"  # <cache>/metrics holds downloaded metric files
DOWNLOAD_TIMEOUT_SECONDS = 60.0  # per socket operation, not for the whole file
_HASH_CHUNK_BYTES = 1 << 20

# Hub files a Sentence-BERT folder needs; exported formats (ONNX, OpenVINO, TF, Flax) are skipped.
_SBERT_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*pytorch_model.bin"]
_TOKENIZER_PATTERNS = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ModelFiles:
    """One resolved model: what was asked for, where its files are, and whether it is official."""

    name: str  # hub id or the path as given
    path: Path  # SBERT: a directory; echecker: the .ckpt file
    source: str  # "local", "hub" or "download"
    sha256: str | None  # of the weights file, so a substitute is identifiable later
    official: bool


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def default_metrics_dir(cache_dir: Path | None) -> Path:
    """``<cache>/metrics``; the cache root defaults to $XARES_CACHE, else ~/.cache/xares."""
    if cache_dir is None:
        from xares_llm.cache.root import local_cache_root

        cache_dir = local_cache_root()
    return Path(cache_dir).expanduser() / METRICS_SUBDIR


def hub_snapshot(repo_id: str, patterns: list[str], what: str, env: str | None = None) -> Path:
    """Download (or find in the HF cache) the files of a hub model; errors say how to go offline."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=repo_id, allow_patterns=patterns))
    except Exception as e:
        hint = f" or set {env}" if env else ""
        raise MetricError(
            f"{what}: {repo_id!r} is not a local directory and could not be fetched from the Hugging Face hub "
            f"({type(e).__name__}: {e}). Pass a local copy{hint}, or set HF_HUB_OFFLINE=1 with a populated HF cache."
        ) from e


def weights_file(model_dir: Path) -> Path | None:
    """The transformer weights: in the folder itself, or in a module subfolder (old "0_Transformer/")."""
    for folder in [model_dir, *sorted(p for p in model_dir.iterdir() if p.is_dir())]:
        for name in _WEIGHT_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def resolve_sbert(requested: str | None) -> ModelFiles:
    """The Sentence-BERT directory: given path or hub id, else $XARES_SBERT, else the official model."""
    name = requested or os.environ.get(SBERT_ENV) or OFFICIAL_SBERT
    local = Path(name).expanduser()
    if local.is_dir():
        path, source = local.resolve(), "local"
    elif local.exists():
        raise MetricError(f"sbert: {local} is a file; give the Sentence-BERT model directory")
    else:
        path, source = hub_snapshot(name, _SBERT_PATTERNS, "sbert", SBERT_ENV), "hub"
    weights = weights_file(path)
    if weights is None:
        raise MetricError(f"sbert: no {' or '.join(_WEIGHT_FILES)} in {path}; is it a Sentence-BERT model folder?")
    # A local folder may hold anything, so only the hub id itself counts as the official model.
    official = source == "hub" and name == OFFICIAL_SBERT
    return ModelFiles(name=name, path=path, source=source, sha256=sha256_file(weights), official=official)


def download_file(url: str, dest: Path, sha256: str) -> Path:
    """Stream `url` to `dest` atomically (temp file + rename), refusing a file whose sha256 differs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, atomic_file(dest) as out:
            while chunk := response.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != sha256:  # raised inside: the temp is removed, dest never replaced
                raise MetricError(
                    f"{url}: downloaded file has sha256 {digest.hexdigest()}, expected {sha256}; not using it"
                )
    except OSError as e:
        raise MetricError(f"could not download {url} ({e}); download it by hand and pass its path") from e
    return dest


def fetch_official_echecker(
    metrics_dir: Path, url: str = OFFICIAL_ECHECKER_URL, sha256: str = OFFICIAL_ECHECKER_SHA256
) -> Path:
    """The official checkpoint in `metrics_dir`, downloaded only if absent or corrupt."""
    dest = metrics_dir / OFFICIAL_ECHECKER_FILE
    if dest.is_file():
        if sha256_file(dest) == sha256:
            return dest
        log.warning("%s does not match sha256 %s; downloading it again", dest, sha256)
    return download_file(url, dest, sha256)


def resolve_echecker(requested: str | None, cache_dir: Path | None) -> ModelFiles | None:
    """The error-checker checkpoint, or None for 'none' (no penalty)."""
    name = requested or os.environ.get(ECHECKER_ENV) or None
    if name is not None and name.strip().lower() == NO_ECHECKER:
        return None
    if name is None:
        path = fetch_official_echecker(default_metrics_dir(cache_dir))
        return ModelFiles(OFFICIAL_ECHECKER_FILE, path, "download", OFFICIAL_ECHECKER_SHA256, official=True)
    path = Path(name).expanduser()
    if not path.is_file():
        raise MetricError(
            f"echecker: no such file {path}; give the checkpoint file, '{NO_ECHECKER}' for no penalty, "
            f"or leave it unset to download the official {OFFICIAL_ECHECKER_FILE}"
        )
    digest = sha256_file(path)
    return ModelFiles(name, path.resolve(), "local", digest, official=digest == OFFICIAL_ECHECKER_SHA256)


def resolve_backbone(model_type: str, hub_only: bool = False) -> tuple[Path, str]:
    """Config + tokenizer of the error checker's backbone: a local directory, else the hub.

    `hub_only` is set for the official checkpoint, whose "bert-base-uncased" must never be taken from
    a directory that happens to carry that name.
    """
    local = Path(model_type).expanduser()
    if not hub_only and local.is_dir():
        return local.resolve(), "local"
    return hub_snapshot(model_type, _TOKENIZER_PATTERNS, "echecker backbone"), "hub"
