"""`xares`: the Typer app. Each command lives in its own module; user errors are rendered here once."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import typer
from rich.markup import escape

from xares_llm.cache.errors import CacheError
from xares_llm.cli import cache, check, demo, download, evaluate, extract, probe, run, score, tasks, train
from xares_llm.cli.console import err
from xares_llm.errors import XaresError

app = typer.Typer(
    name="xares",
    help=(
        "Evaluate an audio encoder as the front end of an audio LLM, from a shared feature cache.\n\n"
        "Quick start: `xares demo` runs the whole pipeline offline on synthetic tasks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """Stage one: `xares extract`. Stage two: `xares train`, `xares eval`, `xares score`."""


def user_errors(command: Callable) -> Callable:
    """Render a user error (`XaresError`, `CacheError`) as one red line, exit 1; XARES_DEBUG=1 shows the traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (XaresError, CacheError) as e:
            if os.environ.get("XARES_DEBUG"):
                raise
            err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from e

    return wrapper


COMMANDS: dict[str, Callable] = {
    "demo": demo.demo,
    "tasks": tasks.list_tasks,
    "check": check.check,
    "extract": extract.extract,
    "train": train.train,
    "eval": evaluate.evaluate,
    "score": score.score,
    "probe": probe.probe,
    "run": run.run,
    "download": download.download,
}

for name, command in COMMANDS.items():
    app.command(name)(user_errors(command))


cache_app = typer.Typer(help="List, verify and move feature stores (push/pull).", no_args_is_help=True)
for name, command in {"ls": cache.ls, "verify": cache.verify, "push": cache.push, "pull": cache.pull}.items():
    cache_app.command(name)(user_errors(command))
app.add_typer(cache_app, name="cache")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
