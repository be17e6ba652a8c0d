"""Fail in seconds, not minutes, when a run needs a hub model that this machine cannot get.

transformers retries an unreachable hub for tens of seconds before a long traceback. Before any
work starts, `require_model` checks that a recipe's LLM is a local folder, is in the local
Hugging Face cache, or that the hub answers within `HUB_PROBE_TIMEOUT_S`.
"""

from __future__ import annotations

import os
from pathlib import Path

from xares_llm.errors import XaresError
from xares_llm.lalm.recipe import Recipe

HUB_PROBE_TIMEOUT_S = 3.0


def require_model(repo_id: str, revision: str | None = None) -> None:
    """Return when `repo_id` can be loaded; else one XaresError saying which model and what to do."""
    if Path(repo_id).expanduser().is_dir():
        return
    from huggingface_hub import HfApi, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    reason = "HF_HUB_OFFLINE is set" if offline else None
    if not offline:
        try:
            HfApi().model_info(repo_id, revision=revision, timeout=HUB_PROBE_TIMEOUT_S)
        except Exception as e:  # connection, DNS, HTTP and timeout errors all mean: not reachable now
            reason = f"the hub is unreachable ({type(e).__name__})"
    if reason is None:
        return
    raise XaresError(
        f"model {repo_id} is not in the local Hugging Face cache and {reason}; copy it here and set "
        f"HF_HUB_OFFLINE=1, give a local folder with --set llm.name=/path/to/model, or try --recipe demo"
    )


def require_recipe_models(recipe: Recipe) -> None:
    """The recipe's LLM (and its tokenizer, when it names another) must be loadable."""
    if recipe.llm.name is not None:
        require_model(recipe.llm.name, recipe.llm.revision)
    if recipe.llm.tokenizer not in (None, "byte", recipe.llm.name):
        require_model(recipe.llm.tokenizer, recipe.llm.revision)
