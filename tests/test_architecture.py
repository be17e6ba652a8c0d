"""The package's floor plan holds: no import circles, imports only in the allowed directions, and every
``"module:object"`` string the registries and entry points name resolves."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# installed name -> folder in the repository (pyproject's package-dir)
FOLDERS = {"xares_llm.cache": ROOT / "cache", "xares_llm.cli": ROOT / "cli", "xares_llm": ROOT / "xares_llm"}

# (importer, imported): modules of the first folder never import modules of the second.
FORBIDDEN = [
    ("xares_llm.metrics", "xares_llm.tasks"),
    ("xares_llm.metrics", "xares_llm.lalm"),
    ("xares_llm.metrics", "xares_llm.scoring"),
    ("xares_llm.metrics", "xares_llm.audio"),
    ("xares_llm.extract", "xares_llm.lalm"),
    ("xares_llm.extract", "xares_llm.probe"),
    ("xares_llm.extract", "xares_llm.scoring"),
    ("xares_llm.lalm", "xares_llm.extract"),
    ("xares_llm.probe", "xares_llm.lalm"),
    ("xares_llm.probe", "xares_llm.extract"),
]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def rule_broken(importer: str, target: str) -> bool:
    if within(importer, "xares_llm.cache") and not within(target, "xares_llm.cache"):
        return True  # the store imports nothing of xares_llm but itself
    if within(target, "xares_llm.cli") and not within(importer, "xares_llm.cli"):
        return True  # only the CLI imports the CLI
    return any(within(importer, source) and within(target, banned) for source, banned in FORBIDDEN)


def module_files() -> dict[str, Path]:
    """Every module of the installed package, by its dotted name."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if package == "xares_llm" and name.split(".")[1:2] in (["cache"], ["cli"]):
                continue
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """First-party modules `path` imports, at any depth of its code (lazy imports count)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    edges = {}
    for name, path in files.items():
        targets = imports(path, known) - {name}
        # importing a package's own __init__ from inside it is how Python loads it, not a dependency
        edges[name] = {t for t in targets if not name.startswith(t + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert cycles(graph()) == []


def test_imports_run_in_the_allowed_directions():
    broken = [f"{a} -> {b}" for a, targets in graph().items() for b in sorted(targets) if rule_broken(a, b)]
    assert broken == []


def test_the_rules_catch_an_upward_import():
    assert rule_broken("xares_llm.extract.run", "xares_llm.lalm.model")
    assert rule_broken("xares_llm.cache.reader", "xares_llm.errors")
    assert rule_broken("xares_llm.pipeline", "xares_llm.cli.main")
    assert not rule_broken("xares_llm.lalm.train", "xares_llm.cache.reader")


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def registered_targets() -> list[str]:
    """Every "module:object" string in the package's source and the entry points of pyproject.toml."""
    pattern = re.compile(r"""["'](xares_llm(?:\.\w+)+:\w+(?:\.\w+)*)["']""")
    found = set()
    for path in module_files().values():
        found.update(pattern.findall(path.read_text()))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found.update(project.get("scripts", {}).values())
    for group in project.get("entry-points", {}).values():
        found.update(group.values())
    return sorted(found)


@pytest.mark.parametrize("target", registered_targets())
def test_every_registered_target_resolves(target):
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    assert obj is not None
