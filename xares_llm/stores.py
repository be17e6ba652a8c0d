"""Which feature store a command means: ENCODER as an encoder-id, a unique id prefix, or a spec.

Its own module, so commands that only read stores (`xares probe`) resolve them without importing
the LLM stack.
"""

from __future__ import annotations

from pathlib import Path

from xares_llm.cache import list_encoders
from xares_llm.cache.root import is_url
from xares_llm.errors import EncoderError, StoreError


def resolve_store(cache_root: Path | str, encoder: str, encoder_args: str | dict | None = None) -> tuple[str, str]:
    """ENCODER as an encoder-id, a unique id prefix, or a spec -> (encoder-id, spec).

    An id needs only the cache (someone who has the store but not the encoder can train);
    a spec is loaded and fingerprinted to find its store.
    """
    infos = {info.encoder_id: info for info in list_encoders(cache_root)}
    matches = [i for i in infos if i == encoder] or [i for i in infos if i.startswith(encoder)]
    if len(matches) == 1 and not encoder_args:
        return matches[0], infos[matches[0]].spec
    from xares_llm.encoders.describe import candidate_ids

    try:
        candidates = candidate_ids(encoder, encoder_args)  # resampler, precision, store dtype: in the fingerprint
    except EncoderError as e:
        if len(matches) > 1:  # not a spec either (`mel` prefixes every mel store's id, and is one)
            raise StoreError(f"encoder-id prefix {encoder!r} is ambiguous: {', '.join(matches)}") from e
        known = ", ".join(infos) or "none"
        raise StoreError(
            f"{encoder!r} is neither a store in {cache_root} (stores: {known}) nor a loadable encoder: {e}"
        ) from e
    for candidate in candidates:  # the reference resampler and precision first, then the default store dtype
        if candidate in infos:
            return candidate, encoder
    create = (
        f"push one there with: xares cache push <encoder-id> {cache_root}"  # a URL cache is read-only
        if is_url(cache_root)
        else f"create it with: xares extract {encoder} --tasks <mixture> --cache {cache_root}"
    )
    raise StoreError(
        f"no feature store for {encoder} in {cache_root} (none of its {len(candidates)} encoder-ids, one per "
        f"resampler, encoder precision and store dtype, e.g. {candidates[0]}); {create}"
    )
