"""Store plumbing of an extraction: write errors as one line, and the encoder.json that claims a store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from xares_llm.cache import EncoderInfo, read_encoder_info
from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import ENCODER_FILE, encoder_dir
from xares_llm.cache.writer import write_failure
from xares_llm.errors import StoreError


@contextlib.contextmanager
def store_errors(path: Path) -> Iterator[None]:
    """An OS error while writing the store, or a cache error, as a one-line `StoreError`."""
    try:
        yield
    except StoreError:
        raise
    except CacheError as e:
        raise StoreError(str(e)) from e
    except OSError as e:
        raise StoreError(write_failure(path, e)) from e


def write_encoder_info(cache_root: Path, info: EncoderInfo) -> None:
    """Create encoder.json, or confirm the existing one was made by this very encoder."""
    existing = read_encoder_info(cache_root, info.encoder_id)
    if existing is not None:
        if existing.fingerprint != info.fingerprint:
            raise StoreError(
                f"{encoder_dir(cache_root, info.encoder_id)} belongs to another encoder (fingerprint "
                f"{existing.fingerprint[:16]}… vs {info.fingerprint[:16]}…); remove it or use another --cache"
            )
        return
    path = encoder_dir(cache_root, info.encoder_id) / ENCODER_FILE
    with store_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, info.to_json())
