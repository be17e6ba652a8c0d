"""Where the cache is: ``$XARES_CACHE`` (a folder, or an fsspec URL of a store to read from), else ~/.cache/xares.

The one place that rule is written; downloads, metric models and URL mirrors all start from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CACHE_ENV = "XARES_CACHE"
URL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*(::|://)")  # s3://..., file://..., filecache::s3://...


def is_url(root: object) -> bool:
    """True for an fsspec URL (``scheme://`` or a chained ``a::b://``); a local path is never one."""
    return isinstance(root, str) and bool(URL_PATTERN.match(root))


def cache_root_of(text: str | Path) -> Path | str:
    """A cache root as typed: an fsspec URL stays a string, anything else is a local path."""
    return text if is_url(text) else Path(text)


def home_cache() -> Path:
    return Path.home() / ".cache" / "xares"


def default_cache_root() -> Path | str:
    """$XARES_CACHE (a folder, or an fsspec URL of a store to read from), else ~/.cache/xares."""
    value = os.environ.get(CACHE_ENV)
    return value if is_url(value) else Path(value or home_cache()).expanduser()


def local_cache_root(cache_root: Path | str | None = None) -> Path:
    """Where downloads, metric models and URL mirrors go: the cache itself when local, ~/.cache/xares
    beside a URL cache (which is read-only)."""
    root = default_cache_root() if cache_root is None else cache_root
    return home_cache() if is_url(root) else Path(root)
