"""`xares`: the Typer app. Each command lives in its own module; user errors are rendered here once."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from xares_llm.cache.errors import CacheError
from xares_llm.cli import (
    bench,
    cache,
    check,
    demo,
    download,
    evaluate,
    extract,
    jobs,
    probe,
    report,
    run,
    runs,
    score,
    tasks,
    train,
)
from xares_llm.cli.console import err
from xares_llm.errors import XaresError


def plain_flags(params: list) -> list:
    """Flags (``--help`` included) need no ``<bool>`` placeholder in help."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.display_type_rich = lambda ctx: None
    return params


class XaresCommand(TyperCommand):
    """Usage lines as people write them: ``xares train [OPTIONS] ENCODER`` (no braces), plain flags."""

    def get_params(self, ctx: typer.Context) -> list:
        return plain_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        return [piece.strip("{}") for piece in super().collect_usage_pieces(ctx)]


class XaresGroup(TyperGroup):
    def get_params(self, ctx: typer.Context) -> list:
        return plain_flags(super().get_params(ctx))


app = typer.Typer(
    name="xares",
    cls=XaresGroup,
    help=(
        "Evaluate an audio encoder as the front end of an audio LLM, from a shared feature cache.\n\n"
        "Quick start: `xares demo` runs the whole pipeline offline on synthetic tasks."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def show_version(value: bool) -> None:
    if value:
        from xares_llm import __version__

        typer.echo(f"xares-llm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Stage one: `xares extract`. Stage two: `xares train`, `xares eval`, `xares score`."""


def one_line(error: Exception) -> str:
    """The message; for an error re-raised from a DataLoader worker (torch prefixes the worker's
    traceback), only its last line, without the exception's module path."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    kind, sep, message = last.partition(": ")
    return message if sep and kind.endswith(type(error).__name__) else last


def user_errors(command: Callable) -> Callable:
    """Render a user error (`XaresError`, `CacheError`) as one red line, exit 1; XARES_DEBUG=1 shows the traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (XaresError, CacheError) as e:
            if os.environ.get("XARES_DEBUG"):
                raise
            err.print(f"[red]error:[/red] {escape(one_line(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from e

    return wrapper


COMMANDS: dict[str, Callable] = {
    "demo": demo.demo,
    "check": check.check,
    "extract": extract.extract,
    "train": train.train,
    "eval": evaluate.evaluate,
    "score": score.score,
    "probe": probe.probe,
    "run": run.run,
    "download": download.download,
    "report": report.report,
    "bench": bench.bench,
    "runs": runs.list_runs,
    "jobs": jobs.jobs,
}

for name, command in COMMANDS.items():
    app.command(name, cls=XaresCommand)(user_errors(command))


tasks_app = typer.Typer(cls=XaresGroup, help="List the tasks and mixtures; `xares tasks new` scaffolds your own task.")
tasks_app.callback(invoke_without_command=True)(user_errors(tasks.list_tasks))
tasks_app.command("new", cls=XaresCommand)(user_errors(tasks.new))
app.add_typer(tasks_app, name="tasks")

cache_app = typer.Typer(cls=XaresGroup, help="List, verify and move feature stores (push/pull).", no_args_is_help=True)
for name, command in {"ls": cache.ls, "verify": cache.verify, "push": cache.push, "pull": cache.pull}.items():
    cache_app.command(name, cls=XaresCommand)(user_errors(command))
app.add_typer(cache_app, name="cache")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
