"""The two Rich consoles: results to stdout, progress and diagnostics to stderr.

Off a terminal (a file, a pipe, CI, a batch log) results are read whole, often by a script, so `out`
lays tables out at their natural width instead of fitting, wrapping or cutting them to 80 columns.
"""

import json

from rich.console import Console, ConsoleDimensions
from rich.table import Table

OFF_TERMINAL_WIDTH = 100_000  # wider than any table: every cell at its natural width


class ResultConsole(Console):
    """A console whose width, off a terminal, never shortens a value."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(OFF_TERMINAL_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


class Listing(Table):
    """A Rich table whose cells fold onto more lines when the terminal is narrow, never cut with an ellipsis
    (ids are pasted into the next command)."""

    def add_column(self, *args, **kwargs) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


out = ResultConsole()
err = Console(stderr=True)


def print_json(data: object) -> None:
    """`--json` of a listing: the whole data, as JSON, alone on stdout."""
    out.file.write(json.dumps(data, indent=2, default=str) + "\n")
