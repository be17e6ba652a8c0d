"""Which software produced a result: package versions and, in a git checkout, the commit."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

from xares_llm import __version__

RECORDED_PACKAGES = ("torch", "transformers", "peft", "jiwer", "zarr", "numpy")
GIT_TIMEOUT_S = 5


def software_versions() -> dict:
    versions: dict = {"xares_llm": __version__, "git_commit": git_commit(), "python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the source tree xares_llm runs from, when it is a git checkout (an editable install)."""
    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=GIT_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
