"""Every third-party library the package imports is declared in pyproject.toml: a fresh install must run."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("xares_llm", "cache", "cli")  # installed as xares_llm, xares_llm.cache, xares_llm.cli


def imported_modules() -> dict[str, set[str]]:
    """Top-level module -> the files importing it, for every absolute import outside the standard library."""
    found: dict[str, set[str]] = {}
    for folder in PACKAGE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in {"xares_llm", "__future__"}:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def declared_distributions() -> set[str]:
    """The runtime dependencies and the optional extras a user installs by name (not `dev`): an extra's
    library is imported only inside the feature that needs it (submitit by the launchers)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [spec for name, specs in project["optional-dependencies"].items() if name != "dev" for spec in specs]
    specs = [*project["dependencies"], *extras]
    return {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_every_imported_library_is_a_declared_dependency():
    declared = declared_distributions()
    owners = packages_distributions()
    undeclared = {}
    for module, files in sorted(imported_modules().items()):
        distributions = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not distributions & declared:
            undeclared[module] = sorted(files)
    assert undeclared == {}, f"imported but not in [project].dependencies: {undeclared}"
