"""The two Rich consoles: results to stdout, progress and diagnostics to stderr."""

from rich.console import Console

out = Console()
err = Console(stderr=True)
