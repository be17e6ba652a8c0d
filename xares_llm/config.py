"""Load YAML configs (tasks, mixtures, recipes) by name or file path, validated once.

A name is looked up on the search path first (`add_config_dirs`, from ``--config-dir``, then the
``:``-separated dirs of ``$XARES_CONFIG_PATH``; in each dir ``<kind>/<name>.yaml`` or ``<name>.yaml``),
then among the packaged configs. Every config is a pydantic model; a validation failure becomes a
`ConfigError` that names the file, the field and what is allowed, e.g. ``configs/tasks/x.yaml:
field 'metric.name': Input should be 'accuracy', 'map', ... (got 'acc')``.
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from xares_llm.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)
CONFIG_PATH_ENV = "XARES_CONFIG_PATH"
# The top-level field that tells each kind of config apart, whatever its file is called.
KIND_MARKERS = {"tasks": "dataset", "mixtures": "weights", "recipes": "llm"}

MAX_CONFIG_BYTES = 1 << 20  # the largest packaged config is a few kB
MAX_QUOTE_CHARS = 200  # what an error line quotes of a value or of the YAML parser's message

_config_dirs: list[Path] = []  # from --config-dir, searched before $XARES_CONFIG_PATH


def add_config_dirs(dirs: list[Path] | None) -> None:
    """Search `dirs` for configs by name, before ``$XARES_CONFIG_PATH`` and the packaged ones."""
    for directory in dirs or []:
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise ConfigError(f"--config-dir {directory}: not a directory")
        if directory not in _config_dirs:
            _config_dirs.append(directory)


def config_dirs() -> list[Path]:
    from_env = [Path(p).expanduser() for p in os.environ.get(CONFIG_PATH_ENV, "").split(":") if p]
    return [*_config_dirs, *from_env]


def user_configs(kind: str) -> dict[str, Path]:
    """Name -> file of the configs of `kind` on the search path (first one wins)."""
    found: dict[str, Path] = {}
    for directory in config_dirs():
        for folder in (directory / kind, directory):
            for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                if config_kind(path) == kind:
                    found.setdefault(path.stem, path)
    return found


def packaged_names(kind: str) -> list[str]:
    """Names of the packaged configs of one kind ('tasks', 'mixtures', 'recipes')."""
    folder = resources.files("xares_llm.configs") / kind
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def known_names(kind: str) -> list[str]:
    return sorted({*packaged_names(kind), *user_configs(kind)})


def config_kind(path: Path) -> str | None:
    """'tasks', 'mixtures' or 'recipes' by the file's content; None when it is none of them."""
    try:
        data = read_yaml(Path(path))
    except (OSError, ConfigError):
        return None
    if not isinstance(data, dict):
        return None
    return next((kind for kind, marker in KIND_MARKERS.items() if marker in data), None)


def find_config(kind: str, name_or_path: str) -> Path | None:
    """The file a name or path refers to, or None when no config of `kind` has that name."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"{kind[:-1]} file not found: {candidate}")
        return candidate
    user = user_configs(kind).get(name_or_path)
    if user is not None:
        return user
    packaged = resources.files("xares_llm.configs") / kind / f"{name_or_path}.yaml"
    return Path(str(packaged)) if packaged.is_file() else None


def resolve_config_path(kind: str, name_or_path: str) -> Path:
    """A name (``demo``, on the search path or packaged) or a YAML path -> the file to read."""
    found = find_config(kind, name_or_path)
    if found is not None:
        return found
    names = known_names(kind)
    close = difflib.get_close_matches(name_or_path, names, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown {kind[:-1]} {name_or_path!r}.{hint} Known: {', '.join(names)}; "
        f"or give a YAML path, --config-dir DIR or ${CONFIG_PATH_ENV}."
    )


class _ConfigLoader(yaml.SafeLoader):
    """safe_load without aliases: a config never needs them, and nested ones expand exponentially."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a config", mark)
        return super().compose_node(parent, index)


def load_yaml_text(text: str) -> object:
    """One YAML document as plain data: no tags that build objects (safe_load), no aliases."""
    return yaml.load(text, Loader=_ConfigLoader)


def read_yaml(path: Path) -> dict:
    """A config file's top-level mapping; `ConfigError` naming the file when it is not UTF-8 YAML of one."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes; a config is at most {MAX_CONFIG_BYTES}")
        data = load_yaml_text(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {one_line(str(e))}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level")
    return data


def one_line(text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    """`text` on one line, cut to `limit` characters: an error quotes a file, never all of it."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def validate(model: type[Model], data: dict, source: Path | str) -> Model:
    """Build `model` from `data`; errors name the source file, each bad field and what is allowed."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            got = f" (got {one_line(repr(err['input']))})" if err["type"] != "missing" and "input" in err else ""
            problems.append(one_line(f"field '{field}': {err['msg']}{got}", 2 * MAX_QUOTE_CHARS))
        raise ConfigError(f"{source}: " + "; ".join(problems)) from e


def load_config(model: type[Model], kind: str, name_or_path: str, overrides: dict | None = None) -> Model:
    """Load a packaged or user config of `kind` into `model`, applying dotted `overrides` first."""
    path = resolve_config_path(kind, name_or_path)
    data = read_yaml(path)
    if not overrides:
        return validate(model, data, path)
    validate(model, data, path)  # a fault of the file is the file's; what is left is the overrides'
    for dotted, value in overrides.items():
        set_dotted(data, dotted, value)
    given = ", ".join(f"{k}={v}" for k, v in overrides.items())
    return validate(model, data, f"--set {given} (on {path.name})")


def set_dotted(data: dict, dotted: str, value: object) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels as needed."""
    *parents, leaf = dotted.split(".")
    node = data
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = value
