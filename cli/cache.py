"""`xares cache`: list, verify and move feature stores."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import ENCODER_FILE, encoder_dir, features_root, match_encoder_id, part_name
from xares_llm.cache.profile import read_profiles
from xares_llm.cli.console import Listing, err, out, print_json
from xares_llm.cli.options import CacheOpt, JsonOpt, write_cache
from xares_llm.cli.progress import make_progress

if TYPE_CHECKING:  # zarr and fsspec load when a command needs them, not for --help
    from xares_llm.cache.transfer import Transfer
    from xares_llm.cache.verify import PartPlan

EncoderIdArg = Annotated[str, typer.Argument(help="An encoder-id, as `xares cache ls` prints it.")]
LocationArg = Annotated[
    str, typer.Argument(help="hf://datasets/<owner>/<name>\\[/folder], an fsspec URL (s3://, file://, ...) or a path.")
]


def folder_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def last_extract(store: Path) -> str:
    """The latest extraction's speed, peak memory and device, from the store's profile; "" when none."""
    runs = read_profiles(store)
    if not runs:
        return ""
    run = runs[-1]
    speed, peak, device = run.get("x_realtime"), run.get("peak_memory_mb"), run.get("device", "?")
    parts = [f"{speed:g}x real time" if isinstance(speed, int | float) else "?x real time"]
    parts.append(f"{peak:.0f} MB peak" if isinstance(peak, int | float) else "peak ?")
    return ", ".join([*parts, str(device)])


LS_COLUMNS = ("encoder-id", "spec", "D", "Hz", "dtype", "precision", "datasets", "clips", "size", "last extract")


def store_row(root: Path, encoder_id: str) -> dict:
    """One `ls` row by column; a store that cannot be read raises `CacheError` naming what is wrong."""
    from xares_llm.cache import FeatureSplit, read_encoder_info

    info = read_encoder_info(root, encoder_id)
    if info is None:
        raise CacheError(f"{encoder_dir(root, encoder_id)}: no {ENCODER_FILE}, so not a readable store")
    base = encoder_dir(root, encoder_id)
    splits = [(d.parent.name, d.name) for d in sorted(base.glob("*/*")) if d.is_dir()]
    clips = sum(len(FeatureSplit(root, encoder_id, ds, split)) for ds, split in splits)
    values = (
        info.encoder_id, info.spec, info.output_dim, info.frame_rate_hz, info.dtype, info.encoder_precision,
        len({ds for ds, _ in splits}), clips, f"{folder_bytes(base) / 2**20:.1f} MiB", last_extract(base),
    )  # fmt: skip
    return dict(zip(LS_COLUMNS, values, strict=True))


def ls(cache: CacheOpt = None, as_json: JsonOpt = False) -> None:
    """List the encoder stores in the cache: spec, dims, frame rate, datasets, clips, size and the last
    extraction's speed, peak memory and device."""
    root = write_cache(cache, "cache ls")
    base = features_root(root)
    rows, unreadable = [], []
    for directory in sorted(base.iterdir()) if base.is_dir() else []:
        if not directory.is_dir() or directory.name.startswith("."):  # .pull-* temp dirs of a running pull
            continue
        try:
            rows.append(store_row(root, directory.name))
        except CacheError as e:
            rows.append({"encoder-id": directory.name, "spec": None, "unreadable": str(e)})
            unreadable.append(e)
    if as_json:
        print_json(rows)
    elif not rows:
        err.print(f"no feature stores in {root}; `xares extract ENCODER --tasks ...` writes one", highlight=False)
    else:
        table = Listing(title=f"Feature stores in {root}", title_justify="left")
        for column in LS_COLUMNS:  # every column folds on a narrow terminal, never cut: ids are pasted elsewhere
            table.add_column(column)
        for row in rows:
            if "unreadable" in row:
                table.add_row(escape(row["encoder-id"]), "[red]unreadable[/red]", *[""] * (len(LS_COLUMNS) - 2))
            else:
                table.add_row(*(escape(f"{row[c]:g}" if c == "Hz" else str(row[c])) for c in LS_COLUMNS))
        out.print(table)
    for e in unreadable:
        err.print(f"[red]unreadable:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)


def planned_parts(store: Path, tasks: str | None, splits: list[str]) -> tuple[PartPlan, list[str]]:
    """The parts each dataset/split folder should hold, from the task configs (packaged and `tasks`):
    every folder present, plus `splits` of `tasks`. Also the folders no task config describes."""
    from xares_llm.config import packaged_names
    from xares_llm.tasks.schema import SPLITS, load_task, resolve_tasks

    chosen = resolve_tasks(tasks) if tasks else []
    datasets = {t.dataset.name: t.dataset for t in map(load_task, packaged_names("tasks"))}
    datasets |= {t.dataset.name: t.dataset for t in chosen}
    present = {(d.parent.name, d.name) for d in store.glob("*/*") if d.is_dir()}
    unplanned = sorted(f"{ds}/{split}" for ds, split in present if ds not in datasets or split not in SPLITS)
    wanted = {(ds, split) for ds, split in present if ds in datasets and split in SPLITS}
    wanted |= {(t.dataset.name, split) for t in chosen for split in splits}
    plan = {(ds, split): [part_name(s) for s in datasets[ds].shards(split)] for ds, split in sorted(wanted)}
    return plan, unplanned


def verify(
    encoder_id: EncoderIdArg,
    tasks: Annotated[
        str | None,
        typer.Option("--tasks", help="Also require every part these tasks or mixtures need (as for `xares extract`)."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Splits of --tasks to require: train, test or both.")] = (
        "train,test"
    ),
    cache: CacheOpt = None,
) -> None:
    """Check encoder.json, every chunk's crc32c, every file's presence, every part's counts, and that no part
    the task configs list is missing; exit 1 on damage."""
    from xares_llm.tasks.schema import SPLITS

    splits = [s.strip() for s in split.split(",") if s.strip()]
    bad_split = next((s for s in splits if s not in SPLITS), None)
    if bad_split:
        raise typer.BadParameter(f"unknown split {bad_split!r}; use train, test or train,test", param_hint="--split")
    root = write_cache(cache, "cache verify")
    encoder_id = match_encoder_id(root, encoder_id)
    store = encoder_dir(root, encoder_id)
    if not store.is_dir():
        raise CacheError(f"no store {encoder_id} in {root}; see `xares cache ls`")
    from xares_llm.cache.verify import parts_to_verify, verify_encoder_file, verify_store

    plan, unplanned = planned_parts(store, tasks, splits)
    for folder in unplanned:
        err.print(f"note: no task config describes {folder}; its set of parts is not checked", highlight=False)
    total = len(parts_to_verify(root, encoder_id, plan))
    if not total:
        raise CacheError(f"no parts for {encoder_id} in {root}; see `xares cache ls`")
    encoder_file = verify_encoder_file(root, encoder_id)
    bad = []
    with make_progress() as progress:
        task = progress.add_task(f"verify {encoder_id}", total=total, status="")
        for report in verify_store(root, encoder_id, plan):
            if not report.ok:
                bad.append(report)
            progress.update(task, advance=1, status=f"{len(bad)} damaged")
    failed = [r for r in (encoder_file, *bad) if not r.ok]
    for report in failed:
        err.print(f"[red]{escape(str(report.path))}[/red]: " + escape("; ".join(report.problems)), soft_wrap=True)
    if failed:
        found = [f"{len(bad)} of {total} parts are damaged or missing"] if bad else []
        found += [] if encoder_file.ok else [f"{ENCODER_FILE} is damaged or missing"]
        raise CacheError(f"{' and '.join(found)}; delete damaged parts and rerun `xares extract` to write them again")
    out.print(f"{total} parts verified: every chunk checksum, file and count is intact")


def report_left_out(transfer: Transfer) -> None:
    if transfer.left_out:
        names = ", ".join(transfer.left_out[:3]) + (", ..." if len(transfer.left_out) > 3 else "")
        err.print(
            f"left out {len(transfer.left_out)} temp parts or locks of an unfinished extraction: {escape(names)}",
            highlight=False,
            soft_wrap=True,
        )


def push(encoder_id: EncoderIdArg, destination: LocationArg, cache: CacheOpt = None) -> None:
    """Upload one encoder store (verified first) to a Hugging Face dataset repo or an fsspec URL."""
    from xares_llm.cache.transfer import push as push_store

    root = write_cache(cache, "cache push")
    transfer = push_store(root, match_encoder_id(root, encoder_id), destination)
    report_left_out(transfer)
    out.print(f"pushed {transfer.files} files to {escape(str(transfer.path))}", highlight=False)


def pull(encoder_id: EncoderIdArg, source: LocationArg, cache: CacheOpt = None) -> None:
    """Download one encoder store into the cache; it appears only after every chunk verifies and every part
    the task configs list for its dataset/split folders is there."""
    from xares_llm.cache.transfer import pull as pull_store

    transfer = pull_store(
        write_cache(cache, "cache pull"), encoder_id, source, lambda store: planned_parts(store, None, [])[0]
    )
    report_left_out(transfer)
    out.print(f"pulled {transfer.files} files into {escape(str(transfer.path))}", highlight=False)
