"""Load YAML configs (tasks, mixtures, recipes) by packaged name or file path, validated once.

Every config is a pydantic model; a validation failure becomes a `ConfigError` that names the file,
the field and what is allowed, e.g. ``configs/tasks/x.yaml: field 'metric.name': Input should be
'accuracy', 'map', ... (got 'acc')``.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from xares_llm.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def packaged_names(kind: str) -> list[str]:
    """Names of the packaged configs of one kind ('tasks', 'mixtures', 'recipes')."""
    folder = resources.files("xares_llm.configs") / kind
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(kind: str, name_or_path: str) -> Path:
    """A packaged name (``demo``) or a YAML path (``my/recipe.yaml``) -> the file to read."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"{kind[:-1]} file not found: {candidate}")
        return candidate
    packaged = resources.files("xares_llm.configs") / kind / f"{name_or_path}.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    names = packaged_names(kind)
    close = difflib.get_close_matches(name_or_path, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"unknown {kind[:-1]} {name_or_path!r}.{hint} Known: {', '.join(names)}; or give a YAML path.")


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level")
    return data


def validate(model: type[Model], data: dict, source: Path | str) -> Model:
    """Build `model` from `data`; errors name the source file, each bad field and what is allowed."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
            problems.append(f"field '{field}': {err['msg']}{got}")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from e


def load_config(model: type[Model], kind: str, name_or_path: str, overrides: dict | None = None) -> Model:
    """Load a packaged or user config of `kind` into `model`, applying dotted `overrides` first."""
    path = resolve_config_path(kind, name_or_path)
    data = read_yaml(path)
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return validate(model, data, path)


def set_dotted(data: dict, dotted: str, value: object) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels as needed."""
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = value
