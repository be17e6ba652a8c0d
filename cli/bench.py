"""`xares bench`: clips/s, x real time, peak memory, frame rate and output dim of an encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cli.console import Listing, err, out, print_json
from xares_llm.cli.options import EncoderArgsOpt


def bench(
    encoder: Annotated[str, typer.Argument(help="Built-in name, path/file.py[:Class] or pkg.module:Class.")],
    durations: Annotated[str, typer.Option("--durations", help="Clip lengths in seconds, comma list.")] = "1,10,30",
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Clips per call, comma list.")] = "1,4,16",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[
        str, typer.Option("--precision", help="fp32, or fp16/bf16 autocast, as extraction runs it.")
    ] = "fp32",
    repeats: Annotated[int, typer.Option("--repeats", help="Timed calls per point (median).", min=1)] = 5,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls before each point.", min=0)] = 1,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the results to this JSON file; `--json -` prints them instead."),
    ] = None,
    encoder_args: EncoderArgsOpt = None,
) -> None:
    """Time the encoder on synthetic clips through the extraction path; warm-up excluded, median of repeats.

    Examples:

      xares bench mel --durations 1,10 --batch-sizes 1,4

      xares bench whisper-base --device cuda --precision fp16 --json whisper-base.json
    """
    from xares_llm.bench import bench_encoder, parse_list

    chosen_durations = parse_list(durations, float, "--durations")
    chosen_batches = parse_list(batch_sizes, int, "--batch-sizes")
    total = len(chosen_durations) * len(chosen_batches)
    done = []

    def progress(point) -> None:
        done.append(point)
        err.print(
            f"  {len(done)}/{total}: {point.duration_s:g} s x {point.batch_size}: {point.x_realtime:.1f}x realtime"
        )

    result = bench_encoder(
        encoder, chosen_durations, chosen_batches, device, precision, repeats, warmup, encoder_args, progress
    )
    if str(json_file) == "-":
        print_json(result)
        return
    out.print(bench_table(result))
    noisy = [p for p in result["points"] if p["wall_iqr_s"] > p["wall_s"]]
    if noisy:
        err.print(
            f"[yellow]warning:[/yellow] {len(noisy)} points vary more between repeats than their median "
            "(IQR > median): the machine is busy; rerun with more --repeats or on an idle machine",
            highlight=False,
        )
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(json_file, json.dumps(result, indent=2))
        err.print(f"wrote {json_file}")


def bench_table(result: dict) -> Listing:
    memory = "peak alloc MB" if result["device"].startswith("cuda") else "peak RSS MB"
    table = Listing(title=f"{result['encoder']} on {result['device']} ({result['precision']})", title_justify="left")
    columns = ["duration s", "batch", "clips/s", "x real time", "wall ms (IQR)", "CPU ms", memory, "frames/s", "dim"]
    for column in columns:
        table.add_column(column, justify="right")
    for p in result["points"]:
        table.add_row(
            f"{p['duration_s']:g}",
            str(p["batch_size"]),
            f"{p['clips_per_s']:.2f}",
            f"{p['x_realtime']:.1f}",
            f"{p['wall_s'] * 1000:.1f} ({p['wall_iqr_s'] * 1000:.1f})",
            f"{p['cpu_s'] * 1000:.1f}",
            f"{p['peak_memory_mb']:.0f}",
            f"{p['frame_rate_hz']:.1f}",
            str(p["output_dim"]),
        )
    table.caption = (
        f"median of {result['points'][0]['repeats'] if result['points'] else 0} calls after {result['warmup']} "
        f"warm-up; torch {result['torch']}, {result['torch_threads']} threads, {result['device_name']}"
    )
    table.caption_justify = "left"
    return table
