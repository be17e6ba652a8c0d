"""Predictions files: ``<run>/predictions/<task>.jsonl``, one line per test clip.

Written by evaluation before any metric runs, read by scoring; this module imports nothing heavy,
so `xares score` starts fast.
"""

from __future__ import annotations

import json
from pathlib import Path

from xares_llm.cache.atomic import atomic_file, atomic_write_text

PREDICTIONS_DIR = "predictions"


def predictions_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{task}.jsonl"


def write_predictions(path: Path, rows: list[dict]) -> None:
    """Rows of {task, key, prediction, references}, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def counts_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / PREDICTIONS_DIR / f"{task}.counts.json"


def write_counts(run_dir: Path, task: str, counts: dict) -> None:
    """What evaluation left out of a task's test split (see `xares_llm.tasks.data.TargetCounts`)."""
    atomic_write_text(counts_path(run_dir, task), json.dumps(counts, indent=2))


def read_counts(run_dir: Path, task: str) -> dict | None:
    path = counts_path(run_dir, task)
    return json.loads(path.read_text()) if path.is_file() else None


def read_predictions(path: Path) -> list[dict]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
