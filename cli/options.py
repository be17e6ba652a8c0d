"""Options shared by several commands, declared once."""

from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cache.root import cache_root_of, default_cache_root, is_url
from xares_llm.encoders.registry import ENCODERS
from xares_llm.errors import StoreError

# A string, not a Path: `s3://b/x` as a Path would become `s3:/b/x`. `read_cache`/`write_cache` turn it
# into a local Path exactly as typer did, or keep the URL.
CacheOpt = Annotated[
    str | None,
    typer.Option(
        "--cache",
        help="Feature cache root: a folder, or (train, eval, probe, score) an fsspec URL of a store to read from, "
        "e.g. s3://bucket/cache or hf://datasets/<owner>/<name> \\[default: $XARES_CACHE or ~/.cache/xares].",
        show_default=False,
    ),
]


def add_config_dirs(dirs: list[Path] | None) -> None:
    """--config-dir, registered with the config loader (imported here, when a command runs, not for --help)."""
    from xares_llm.config import add_config_dirs as add

    add(dirs)


def read_cache(value: str | None) -> Path | str:
    """--cache of a command that only reads stores: a local folder, or a URL read through a local mirror."""
    return default_cache_root() if value is None else cache_root_of(value)


def write_cache(value: str | None, command: str) -> Path:
    """--cache of a command that writes into the cache (or walks its folders): local only."""
    root = read_cache(value)
    if is_url(root):
        raise StoreError(
            f"--cache {root}: a URL cache is read-only (train, eval, probe and score read from one); "
            f"`xares {command}` needs a local cache folder"
        )
    return Path(root)


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
ResamplerOpt = Annotated[
    str,
    typer.Option(
        "--resampler",
        help=(
            "How clips reach 16 kHz: sinc (torchaudio's sinc_interp_hann, the reference setting) or soxr "
            "(soxr HQ; other features, so its own encoder-id and store)."
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
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the listing as JSON (every value whole) instead of a table.")
]
