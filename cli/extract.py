"""`xares extract`: stage one, encoder -> feature store."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cache.format import REFERENCE_PRECISION
from xares_llm.cli.console import err, out
from xares_llm.cli.launch import (
    AccountOpt,
    ArrayOpt,
    ClusterProfileOpt,
    DryRunOpt,
    FollowOpt,
    LauncherOpt,
    PartitionOpt,
    check_launcher,
    cluster_flags,
    launch_run,
)
from xares_llm.cli.options import (
    AutoDeviceOpt,
    CacheOpt,
    ConfigDirOpt,
    DataOpt,
    EncoderArg,
    EncoderArgsOpt,
    EncoderPrecisionOpt,
    ResamplerOpt,
    StoreDtypeOpt,
    ThreadsOpt,
    add_config_dirs,
    write_cache,
)
from xares_llm.cli.progress import ExtractReporter, make_progress
from xares_llm.cli.render import plan_notes, plan_table
from xares_llm.constants import DEFAULT_BATCH_SECONDS, SPLITS


def extract(
    encoder: EncoderArg,
    tasks: Annotated[
        str, typer.Option("--tasks", help="Task or mixture names, comma-separated (demo, task1, esc50,...).")
    ],
    split: Annotated[str, typer.Option("--split", help="Splits to extract: train, test or train,test.")] = "train,test",
    cache: CacheOpt = None,
    data: DataOpt = None,
    encoder_args: EncoderArgsOpt = None,
    batch_seconds: Annotated[
        float, typer.Option(help="Seconds of padded audio per encoder batch.")
    ] = DEFAULT_BATCH_SECONDS,
    device: AutoDeviceOpt = None,
    dtype: StoreDtypeOpt = "float16",
    encoder_precision: EncoderPrecisionOpt = "fp32",
    resampler: ResamplerOpt = "sinc",
    decode_workers: Annotated[
        int, typer.Option(help="Processes decoding audio ahead of the encoder (0 = one background thread).")
    ] = 0,
    max_dropped: Annotated[
        float, typer.Option(help="Fraction of a part's clips that may be dropped before the part is not complete.")
    ] = 0.01,
    keep_nonfinite: Annotated[
        bool, typer.Option(help="Keep clips whose features hold NaN/Inf (counted; `xares cache verify` flags them).")
    ] = False,
    threads: ThreadsOpt = None,
    config_dir: ConfigDirOpt = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Print clips, audio hours, store size, time and free disk per task; extract nothing."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Extract even when the estimated store exceeds the free disk space.")
    ] = False,
    part_slice: Annotated[
        str | None,
        typer.Option(
            "--slice",
            help="K/N: only the K-th of N slices of the planned parts (one task of a job array; locks still apply).",
        ),
    ] = None,
    launcher: LauncherOpt = "local",
    dry_run: DryRunOpt = False,
    cluster_profile: ClusterProfileOpt = None,
    partition: PartitionOpt = None,
    account: AccountOpt = None,
    array: ArrayOpt = None,
    jobs_dir: Annotated[
        Path | None, typer.Option("--jobs-dir", help="With --launcher: the jobs' folder \\[default: jobs/extract].")
    ] = None,
    follow: FollowOpt = True,
) -> None:
    """Run ENCODER once over every clip of the tasks and write Zarr feature stores.

    A rerun skips complete parts whose source shard is unchanged; another encoder (other weights
    or kwargs) gets its own encoder-id and store. Every clip not stored is counted by reason; a
    damaged shard or a part dropping more than --max-dropped of its clips makes the exit code 1.

    Examples:

      xares extract mel --tasks demo

      xares extract whisper-base --tasks task1 --device cuda --data /data/xares_llm_data

      xares extract my_encoder.py:MyEncoder --encoder-args '{"layer": 6}' --tasks esc50 --split test

      xares extract whisper-base --tasks task1 --dtype int8 --plan

      xares extract whisper-base --tasks task1 --slice ${SLURM_ARRAY_TASK_ID}/16   # one task of an array

      xares extract whisper-base --tasks task1 --launcher slurm --array 16 --cluster-profile cluster.yaml
    """
    splits = [s.strip() for s in split.split(",") if s.strip()]
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise typer.BadParameter(f"unknown split {bad[0]!r}; use train, test or train,test", param_hint="--split")
    cache_root = write_cache(cache, "extract")
    from xares_llm.audio.decoding import REFERENCE_RESAMPLER
    from xares_llm.audio.sources import default_data_root
    from xares_llm.extract.report import not_complete_error
    from xares_llm.extract.run import extract as run_extract
    from xares_llm.extract.units import parse_slice
    from xares_llm.tasks.schema import resolve_tasks

    sliced = None if part_slice is None else parse_slice(part_slice)

    add_config_dirs(config_dir)
    data_root = data or default_data_root(cache_root)
    if launcher != "local" or dry_run:
        from xares_llm.launch.plan import RunSpec

        check_launcher(launcher)
        tuned = batch_seconds != DEFAULT_BATCH_SECONDS or decode_workers or max_dropped != 0.01 or keep_nonfinite
        if tuned or part_slice or plan or force:
            raise typer.BadParameter(
                "a launch runs `xares extract` with the default --batch-seconds, --decode-workers, --max-dropped "
                "and --keep-nonfinite, without --slice, --plan or --force; run those by hand with --slice K/N",
                param_hint="--launcher",
            )
        spec = RunSpec(
            encoder, tasks, "", {}, str(cache_root.resolve()), str(data_root.resolve()),
            (jobs_dir or Path("jobs/extract")).resolve(), [], encoder_args, encoder_precision, dtype, device, threads,
            ",".join(splits), resampler,
        )  # fmt: skip
        flags = cluster_flags(partition, account, array, None, None)
        launch_run(spec, launcher, cluster_profile, flags, dry_run, follow, extract_only=True)
        return
    if plan:
        from xares_llm.extract.plan import plan_extract

        estimate = plan_extract(
            encoder, resolve_tasks(tasks), cache_root, data_root, splits=splits, encoder_args=encoder_args,
            batch_seconds=batch_seconds, device=device, dtype=dtype, precision=encoder_precision, threads=threads,
            resampler=resampler,
        )  # fmt: skip
        out.print(plan_table(estimate))
        for line in plan_notes(estimate):
            out.print(line, highlight=False)
        return
    reporter = None
    try:
        with make_progress() as progress:
            reporter = ExtractReporter(progress)
            report = run_extract(
                encoder,
                resolve_tasks(tasks),
                cache_root,
                data_root,
                splits=splits,
                encoder_args=encoder_args,
                batch_seconds=batch_seconds,
                device=device,
                dtype=dtype,
                precision=encoder_precision,
                resampler=resampler,
                decode_workers=decode_workers,
                progress=reporter,
                max_dropped=max_dropped,
                threads=threads,
                keep_nonfinite=keep_nonfinite,
                force=force,
                part_slice=sliced,
            )
    except KeyboardInterrupt:
        raise interrupted(reporter) from None
    out.print(f"encoder-id [bold]{report.encoder_id}[/bold]  store {report.store}")
    if encoder_precision != REFERENCE_PRECISION:
        err.print(f"[yellow]encoder computed with {encoder_precision} autocast: not the reference setting (fp32)")
    if resampler != REFERENCE_RESAMPLER:
        err.print(f"[yellow]clips resampled with {resampler}: not the reference setting ({REFERENCE_RESAMPLER})")
    if report.up_to_date:
        out.print(f"{report.up_to_date} parts up to date")
    if report.elsewhere:
        out.print(f"{report.elsewhere} parts are being extracted by another process (lock held); rerun later")
    if report.written:
        speed = report.audio_seconds / max(report.wall_seconds, 1e-9)
        out.print(
            f"wrote {len(report.written)} parts: {report.clips} clips, {report.audio_seconds / 3600:.2f} h of audio "
            f"in {report.wall_seconds:.1f} s ({speed:.0f}x real time)"
        )
    if report.dropped:
        counts = Counter(item["reason"] for item in report.dropped)
        by_reason = ", ".join(f"{reason} {n}" for reason, n in counts.most_common())
        err.print(
            f"[yellow]{len(report.dropped)} clips dropped[/yellow]: {by_reason} (each part's attrs 'dropped')",
            highlight=False,
        )
        for item in report.dropped[:5]:
            detail = f" ({item['detail']})" if item.get("detail") else ""
            err.print(f"  {item['shard']} {item['key']}: {item['reason']}{detail}", highlight=False)
    if report.not_complete:
        raise not_complete_error(report.not_complete)


def interrupted(reporter: ExtractReporter | None) -> typer.Exit:
    """Ctrl-C: what is kept (every finished part: each is renamed into place whole), what is not (the parts
    in flight) and the command that resumes; exit 130 as for any interrupted command."""
    done = reporter.done if reporter else 0
    total = f" of {reporter.units}" if reporter and reporter.units else ""
    err.print(
        f"interrupted: {done}{total} parts are complete and kept; the parts in flight were discarded. "
        f"Resume with the same command (complete parts are skipped): xares {shlex.join(sys.argv[1:])}",
        highlight=False,
        soft_wrap=True,
    )
    return typer.Exit(code=130)
