"""Named extension points (encoders, projectors, metrics): one small mechanism for all three.

An entry is an object or a lazy ``"module:object"`` string, imported on first use so the CLI starts
fast. Plugins are installed packages that declare entry points in a group (``xares_llm.encoders``,
``xares_llm.projectors``, ``xares_llm.metrics``); they are loaded on the first lookup of a
registry, before any config is validated against it, so a plugin's names work in every command::

    [project.entry-points."xares_llm.metrics"]
    my_metric = "my_pkg.metrics:my_metric"
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> objects of one kind; a name is never silently replaced."""

    def __init__(self, kind: str, entry_point_group: str):
        self.kind, self.group = kind, entry_point_group
        self._entries: dict[str, str | T] = {}
        self._plugins_loaded = False

    def register(self, name: str, target: str | T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self._entries[name]!r})")
        self._entries[name] = target

    def names(self) -> list[str]:
        """Registered names in registration order, plugins included."""
        self._load_plugins()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def target(self, name: str) -> str | T:
        """The entry as registered (a ``"module:object"`` string stays a string); KeyError with choices."""
        if name not in self:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Choices: {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str) -> T:
        """The object registered as `name`, imported on first use."""
        entry = self.target(name)
        if isinstance(entry, str):
            entry = import_target(entry)
            self._entries[name] = entry
        return entry

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in metadata.entry_points(group=self.group):
            self.register(point.name, point.value)


def import_target(target: str) -> object:
    """``"pkg.module:attr"`` -> the attribute, imported."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
