"""The cache's error types; they import nothing from the rest of xares_llm (dependencies point inward)."""

from __future__ import annotations

from pathlib import Path


class CacheError(Exception):
    """A feature store is missing, damaged or cannot be moved; the message says what to do."""


class StoreFileError(CacheError):
    """One part or file of a store cannot be used (damaged, or of another format): names it and what is wrong."""

    def __init__(self, path: Path, problem: str):
        super().__init__(path, problem)  # both in args, so the error pickles back from a DataLoader worker
        self.path, self.problem = Path(path), problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
