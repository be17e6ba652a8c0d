"""Which feature store a command means: ENCODER as an encoder-id, a unique id prefix, or a spec.

Its own module, so commands that only read stores (`xares probe`) resolve them without importing
the LLM stack.
"""

from __future__ import annotations

from pathlib import Path

from xares_llm.cache import list_encoders
from xares_llm.cache.format import STORE_DTYPES
from xares_llm.errors import EncoderError, StoreError


def resolve_store(cache_root: Path, encoder: str, encoder_args: str | dict | None = None) -> tuple[str, str]:
    """ENCODER as an encoder-id, a unique id prefix, or a spec -> (encoder-id, spec).

    An id needs only the cache (someone who has the store but not the encoder can train);
    a spec is loaded and fingerprinted to find its store.
    """
    infos = {info.encoder_id: info for info in list_encoders(cache_root)}
    matches = [i for i in infos if i == encoder] or [i for i in infos if i.startswith(encoder)]
    if len(matches) == 1 and not encoder_args:
        return matches[0], infos[matches[0]].spec
    if len(matches) > 1:
        raise StoreError(f"encoder-id prefix {encoder!r} is ambiguous: {', '.join(matches)}")
    from xares_llm.extract import prepare_encoder

    candidates = []
    for dtype in STORE_DTYPES:  # the store dtype is part of the fingerprint
        try:
            _, info = prepare_encoder(encoder, encoder_args, "cpu", dtype)
        except EncoderError as e:
            known = ", ".join(infos) or "none"
            raise StoreError(
                f"{encoder!r} is neither a store in {cache_root} (stores: {known}) nor a loadable encoder: {e}"
            ) from e
        if info.encoder_id in infos:
            return info.encoder_id, encoder
        candidates.append(info.encoder_id)
    raise StoreError(
        f"no feature store for {encoder} ({' or '.join(candidates)}) in {cache_root}; "
        f"create it with: xares extract {encoder} --tasks <mixture> --cache {cache_root}"
    )
