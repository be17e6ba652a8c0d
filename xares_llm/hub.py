"""Fail in seconds, not minutes, when a command needs a hub model that this machine cannot get.

transformers and huggingface_hub retry an unreachable hub for tens of seconds before a long
traceback. Before any work starts, `require_model` checks that a model (the recipe's LLM, a
built-in encoder's weights) is a local folder, is in the local Hugging Face cache, or that the hub
answers within `HUB_PROBE_TIMEOUT_S`; otherwise one line says which model and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from xares_llm.errors import XaresError

HUB_PROBE_TIMEOUT_S = 3.0
OFFLINE_VALUES = {"1", "true", "yes", "on"}


def require_model(repo_id: str, revision: str | None = None, local_hint: str = "") -> None:
    """Return when `repo_id` can be loaded; else one XaresError naming the model, why, and `local_hint`
    (how this command takes a local folder instead)."""
    if Path(repo_id).expanduser().is_dir():
        return
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except HFValidationError:
        return  # not a hub id (a missing local path): the loader says so, naming the path
    if isinstance(cached, str):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES
    reason = "HF_HUB_OFFLINE is set" if offline else None
    if not offline:
        try:
            HfApi().model_info(repo_id, revision=revision, timeout=HUB_PROBE_TIMEOUT_S)
        except Exception as e:  # connection, DNS, HTTP and timeout errors all mean: not reachable now
            reason = f"the hub is unreachable ({type(e).__name__})"
    if reason is None:
        return
    raise XaresError(
        f"model {repo_id} is not in the local Hugging Face cache and {reason}; copy it here (`hf download "
        f"{repo_id}` on a connected machine, then the Hugging Face cache) and set HF_HUB_OFFLINE=1{local_hint}"
    )
