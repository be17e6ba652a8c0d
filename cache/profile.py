"""`extract-profile.json`: what each `xares extract` run into a store cost, the latest run last.

A JSON list of objects (wall seconds, x real time, peak memory, device, precision, store dtype,
per-stage seconds; see docs/store-format.md). Informational only: nothing reads it to decide
anything, so an unreadable file is replaced, never fatal. Two extractions finishing at the same
moment may each write the list without the other's entry (the last rename wins).
"""

from __future__ import annotations

import json
from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text

PROFILE_FILE = "extract-profile.json"
MAX_RUNS = 100  # older runs are dropped so the file stays small


def read_profiles(store: Path) -> list[dict]:
    """The runs recorded in `store` (an encoder folder), oldest first; [] when absent or unreadable."""
    try:
        runs = json.loads((Path(store) / PROFILE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def append_profile(store: Path, run: dict) -> None:
    """Add `run` as the latest entry, atomically (readers see the old list or the new one)."""
    runs = [*read_profiles(store), run][-MAX_RUNS:]
    atomic_write_text(Path(store) / PROFILE_FILE, json.dumps(runs, indent=1) + "\n")
