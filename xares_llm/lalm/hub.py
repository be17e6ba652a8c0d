"""The recipe's hub models, checked in seconds before a run starts (`xares_llm.hub`)."""

from __future__ import annotations

from xares_llm.hub import require_model
from xares_llm.lalm.recipe import Recipe

LLM_HINT = ", give a local folder with --set llm.name=/path/to/model, or try --recipe demo"


def require_recipe_models(recipe: Recipe) -> None:
    """The recipe's LLM (and its tokenizer, when it names another) must be loadable."""
    if recipe.llm.name is not None:
        require_model(recipe.llm.name, recipe.llm.revision, LLM_HINT)
    if recipe.llm.tokenizer not in (None, "byte", recipe.llm.name):
        require_model(recipe.llm.tokenizer, recipe.llm.revision, LLM_HINT)
