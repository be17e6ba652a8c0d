"""`xares check`: run the contract checks on an encoder and print one table row per check."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.text import Text

from xares_llm.cli.console import Listing, err, out
from xares_llm.cli.options import AutoDeviceOpt, EncoderArg, EncoderArgsOpt

if TYPE_CHECKING:
    from xares_llm.check import CheckResult


def check(encoder: EncoderArg, encoder_args: EncoderArgsOpt = None, device: AutoDeviceOpt = None) -> None:
    """Check that an encoder keeps the challenge contract before you extract features with it.

    Reference checks: nn.Module, int output_dim, forward(audio, mask), (features [B, T', D], mask or None).

    Ours: mask length == T', the mask marks padding, finite output, the same frames alone and batched, coverage.

    Coverage: tone bursts across a 30 s clip must land at the same relative place in its valid frames.

    Also: sampling_rate must be 16000 when declared. Every failure says what came back and how to fix it.

    Measured on one 30 s clip at batch 1: frame rate (must match frame_rate_hz when declared), time, peak memory.

    Exit code 0 only when every mandatory check passes.

    Examples:

      xares check mel

      xares check my_encoder.py

      xares check my_encoders.py:LargeEncoder --encoder-args '{"layer": 6}'

      xares check mypkg.encoders:MyEncoder --device cuda
    """
    from xares_llm.check import all_mandatory_passed, run_checks

    results = run_checks(encoder, encoder_args, device)
    out.print(_table(encoder, results))
    for r in results:
        if r.name == "same encoder-id" and not r.passed:
            err.print(f"[yellow]warning:[/yellow] {escape(r.detail)}", highlight=False, soft_wrap=True)
    failed = [r.name for r in results if r.mandatory and not r.passed]
    if not all_mandatory_passed(results):
        err.print(f"[red]FAIL:[/red] {len(failed)} mandatory check(s) failed: {', '.join(failed)}", highlight=False)
        raise typer.Exit(code=1)
    out.print("[green]all mandatory checks passed[/green]")


def _table(encoder: str, results: list[CheckResult]) -> Listing:
    table = Listing(title=f"xares check {encoder}", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("mandatory", no_wrap=True)
    table.add_column("detail")  # Text, not markup: details contain brackets like [B, T', D]
    for r in results:
        if r.skipped:
            verdict = Text("skipped", style="yellow")
        elif r.passed:
            verdict = Text("pass", style="green")
        else:
            verdict = Text("FAIL", style="bold red" if r.mandatory else "yellow")
        table.add_row(r.name, verdict, "yes" if r.mandatory else "no", Text(r.detail))
    return table
