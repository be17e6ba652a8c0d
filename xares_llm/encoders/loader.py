"""Resolve an encoder spec string to a constructed module plus what identifies it.

Spec forms: a built-in name (``mel``), ``path/file.py``, ``path/file.py:Class``, ``pkg.module:Class``
or ``pkg.module.Class``. Names live in the `ENCODERS` registry (`xares_llm.registry`) as
``"module:Class"`` strings, imported only when used, so heavy dependencies (transformers) load lazily.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xares_llm.encoders.registry import ENCODERS, EncoderEntry
from xares_llm.errors import EncoderError
from xares_llm.hub import require_model

ENCODER_HINT = (
    ', or give a local folder with --encoder-args \'{"model": "/path/to/model"}\' (or try the weight-free mel)'
)


@dataclass
class LoadedEncoder:
    """A constructed encoder and the facts that identify it (they feed the fingerprint)."""

    module: torch.nn.Module
    spec: str  # as the user wrote it
    qualname: str  # module.Class of the constructed object
    kwargs: dict = field(default_factory=dict)
    source_text: str | None = None  # the file's text for path encoders
    slug: str = "encoder"  # readable prefix of the encoder-id


def parse_kwargs(text: str | dict | None) -> dict:
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return dict(text)
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise EncoderError(f"--encoder-args is not valid JSON: {e.msg} in {text!r}") from e
    if not isinstance(kwargs, dict):
        raise EncoderError(f"--encoder-args must be a JSON object like '{{\"layer\": 6}}', got {text!r}")
    return kwargs


def load_encoder(spec: str, kwargs: str | dict | None = None) -> LoadedEncoder:
    """Construct the encoder named by `spec` with JSON/dict `kwargs`; errors say which form failed."""
    user_kwargs = parse_kwargs(kwargs)
    if spec in ENCODERS:
        entry = ENCODERS.get(spec)
        cls, defaults = (
            (_import_target(entry.target), entry.defaults) if isinstance(entry, EncoderEntry) else (entry, {})
        )
        chosen = {**defaults, **user_kwargs}
        if isinstance(chosen.get("model"), str):  # a built-in's weights: seconds to say they cannot be had
            require_model(chosen["model"], chosen.get("revision"), ENCODER_HINT)
        return _construct(cls, spec, chosen, source_text=None, slug=spec)
    path_part, _, class_name = spec.partition(":") if spec.count(":") == 1 else (spec, "", "")
    if path_part.endswith(".py"):
        path = Path(path_part).expanduser().resolve()
        if not path.is_file():
            raise EncoderError(f"encoder file not found: {path_part} (resolved to {path})")
        cls = _class_from_file(path, class_name or None)
        slug = _slug(class_name or path.stem)
        return _construct(cls, spec, user_kwargs, source_text=path.read_text(encoding="utf-8"), slug=slug)
    if class_name:
        cls = _import_target(spec)
    elif "." in spec:
        module_name, _, class_name = spec.rpartition(".")
        cls = _import_target(f"{module_name}:{class_name}")
    else:
        close = difflib.get_close_matches(spec, ENCODERS.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise EncoderError(
            f"unknown encoder {spec!r}.{hint} Give a registered name ({', '.join(ENCODERS.names())}), "
            "path/file.py[:Class], pkg.module:Class or pkg.module.Class."
        )
    return _construct(cls, spec, user_kwargs, source_text=None, slug=_slug(cls.__name__))


def _slug(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()
    return re.sub(r"[^a-z0-9.]+", "-", name).strip("-") or "encoder"


def _import_target(target: str) -> type:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise EncoderError(f"cannot import module {module_name!r} for encoder {target!r}: {e}") from e
    try:
        return getattr(module, class_name)
    except AttributeError as e:
        raise EncoderError(f"module {module_name!r} has no class {class_name!r}") from e


def _class_from_file(path: Path, class_name: str | None) -> type:
    module_name = f"xares_user_encoder_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EncoderError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))  # lets the file import its siblings
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise EncoderError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(str(path.parent))
    if class_name:
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            raise EncoderError(f"{path} has no class {class_name!r}")
        return cls
    candidates = [n for n, obj in vars(module).items() if n.endswith("Encoder") and inspect.isclass(obj)]
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise EncoderError(
            f"{path} must define exactly one class whose name ends in 'Encoder' (found: {found}); "
            f"name it explicitly, e.g. {path.name}:{candidates[0] if candidates else 'MyEncoder'}"
        )
    return getattr(module, candidates[0])


def raised_at(error: BaseException, cls: type) -> str:
    """`` at file:line in function`` of the innermost frame in `cls`'s own file, else the innermost of all."""
    frames = traceback.extract_tb(error.__traceback__)
    try:
        source = os.path.realpath(inspect.getsourcefile(cls) or "")
    except TypeError:  # a class with no source file
        source = ""
    inside = [f for f in frames if source and os.path.realpath(f.filename) == source]
    where = (inside or frames)[-1] if frames else None
    return f" at {where.filename}:{where.lineno} in {where.name}" if where else ""


def _construct(cls: type, spec: str, kwargs: dict, source_text: str | None, slug: str) -> LoadedEncoder:
    try:
        module = cls(**kwargs)
    except Exception as e:  # a user's constructor can raise anything: one line, where and why
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise EncoderError(
            f"constructing {cls.__qualname__} with {kwargs} raised {type(e).__name__}"
            f"{': ' + message if message else ''}{raised_at(e, cls)}"
        ) from e
    if not isinstance(module, torch.nn.Module):
        raise EncoderError(f"{cls.__qualname__} is not a torch.nn.Module")
    qualname = f"{cls.__module__}.{cls.__qualname__}" if source_text is None else cls.__qualname__
    return LoadedEncoder(module, spec, qualname, kwargs, source_text, slug)
