"""`xares cache`: list, verify and move feature stores."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from xares_llm.cache import FeatureSplit, list_encoders
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import encoder_dir
from xares_llm.cache.transfer import pull as pull_store
from xares_llm.cache.transfer import push as push_store
from xares_llm.cache.verify import store_parts, verify_store
from xares_llm.cli.console import err, out
from xares_llm.cli.options import CacheOpt
from xares_llm.cli.progress import make_progress
from xares_llm.sources import default_cache_root

EncoderIdArg = Annotated[str, typer.Argument(help="An encoder-id, as `xares cache ls` prints it.")]


def folder_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ls(cache: CacheOpt = None) -> None:
    """List the encoder stores in the cache: spec, dims, frame rate, datasets, clips and size."""
    root = cache or default_cache_root()
    table = Table(title=f"Feature stores in {root}", title_justify="left")
    table.add_column("encoder-id", no_wrap=True)  # copied into other commands: keep it whole
    for column in ("spec", "D", "Hz", "dtype", "precision", "datasets", "clips", "size"):
        table.add_column(column)
    for info in list_encoders(root):
        base = encoder_dir(root, info.encoder_id)
        splits = [(d.parent.name, d.name) for d in sorted(base.glob("*/*")) if d.is_dir()]
        clips = sum(len(FeatureSplit(root, info.encoder_id, ds, split)) for ds, split in splits)
        size = folder_bytes(base) / 2**20
        datasets = len({ds for ds, _ in splits})
        table.add_row(
            info.encoder_id,
            info.spec,
            str(info.output_dim),
            f"{info.frame_rate_hz:g}",
            info.dtype,
            info.encoder_precision,
            str(datasets),
            str(clips),
            f"{size:.1f} MiB",
        )
    out.print(table)


def verify(encoder_id: EncoderIdArg, cache: CacheOpt = None) -> None:
    """Check every chunk's crc32c, every file's presence and every part's counts; exit 1 on damage."""
    root = cache or default_cache_root()
    total = len(store_parts(root, encoder_id))
    if not total:
        raise CacheError(f"no parts for {encoder_id} in {root}; see `xares cache ls`")
    bad = []
    with make_progress() as progress:
        task = progress.add_task(f"verify {encoder_id}", total=total, status="")
        for report in verify_store(root, encoder_id):
            if not report.ok:
                bad.append(report)
            progress.update(task, advance=1, status=f"{len(bad)} damaged")
    for report in bad:
        err.print(f"[red]{report.path}[/red]: " + "; ".join(report.problems), highlight=False)
    if bad:
        raise CacheError(
            f"{len(bad)} of {total} parts are damaged; delete them and rerun `xares extract` to rewrite them"
        )
    out.print(f"{total} parts verified: every chunk checksum, file and count is intact")


def push(
    encoder_id: EncoderIdArg,
    destination: Annotated[str, typer.Argument(help="hf://datasets/<owner>/<name>[/folder] or an fsspec URL or path.")],
    cache: CacheOpt = None,
) -> None:
    """Upload one encoder store (verified first) to a Hugging Face dataset repo or an fsspec URL."""
    out.print(f"pushed to {push_store(cache or default_cache_root(), encoder_id, destination)}")


def pull(
    encoder_id: EncoderIdArg,
    source: Annotated[str, typer.Argument(help="hf://datasets/<owner>/<name>[/folder] or an fsspec URL or path.")],
    cache: CacheOpt = None,
) -> None:
    """Download one encoder store into the cache; it appears only after every chunk verifies."""
    out.print(f"pulled into {pull_store(cache or default_cache_root(), encoder_id, source)}")
