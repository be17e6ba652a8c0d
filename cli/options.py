"""Options shared by several commands, declared once."""

from pathlib import Path
from typing import Annotated

import typer

from xares_llm.encoders.registry import ENCODERS

CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Feature cache root \\[default: $XARES_CACHE or ~/.cache/xares].", show_default=False),
]
DataOpt = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Local audio shards mirroring the hub layout \\[default: $XARES_DATA or <cache>/data].",
        show_default=False,
    ),
]
EncoderArgsOpt = Annotated[
    str | None,
    typer.Option("--encoder-args", help="Encoder constructor kwargs as JSON, e.g. '{\"layer\": 6}'."),
]
EncoderArg = Annotated[
    str,
    typer.Argument(
        help=f"A registered name ({', '.join(ENCODERS.names())}), path/file.py[:Class] or pkg.module:Class.",
        metavar="ENCODER",
        show_default=False,
    ),
]
ConfigDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--config-dir",
        help="A folder of your own task, mixture and recipe YAML, found by name (repeatable; also $XARES_CONFIG_PATH).",
        show_default=False,
        metavar="DIR",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="CPU threads for torch \\[default: $OMP_NUM_THREADS, else 1 for small models, every core for large].",
        show_default=False,
        min=1,
    ),
]
AutoDeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="cpu, cuda or cuda:N \\[default: cuda if available].", show_default=False),
]
EncoderPrecisionOpt = Annotated[
    str,
    typer.Option(
        "--encoder-precision",
        help=(
            "Encoder compute precision: fp32, or fp16/bf16 autocast (faster on GPUs). Only fp32 is the reference "
            "setting; fp16/bf16 features differ, so they get their own encoder-id and store."
        ),
    ),
]
StoreDtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="Stored feature dtype: float16, float32, int8 (one float32 scale per frame, about half of float16 "
        "on disk) or bitround<N> (float16 keeping N of its 10 mantissa bits, e.g. bitround7); each is its own store.",
    ),
]
