"""`xares run --launcher slurm|submitit-local`: the options, and the plan or the jobs as text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xares_llm.cli.console import err, out

LauncherOpt = Annotated[
    str,
    typer.Option(
        "--launcher",
        help="local: this process (default). slurm: jobs through submitit (pip install 'xares-llm[slurm]'). "
        "submitit-local: the same jobs as local processes.",
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="With --launcher: print the jobs and equivalent sbatch scripts; submit nothing."),
]
ClusterProfileOpt = Annotated[
    Path | None,
    typer.Option("--cluster-profile", help="YAML of cluster settings (docs/cluster.md); flags override it."),
]
PartitionOpt = Annotated[str | None, typer.Option("--partition", help="Slurm partition.")]
AccountOpt = Annotated[str | None, typer.Option("--account", help="Slurm account.")]
ArrayOpt = Annotated[int | None, typer.Option("--array", help="Extraction job array size (slices of the parts).")]
GpusOpt = Annotated[int | None, typer.Option("--gpus", help="GPUs per training job (several: one process each).")]
TimeOpt = Annotated[int | None, typer.Option("--time-min", help="Wall-clock limit of each training job, minutes.")]
FollowOpt = Annotated[
    bool,
    typer.Option("--follow/--no-follow", help="Wait for the jobs, resubmitting killed ones (slurm may leave them)."),
]


def cluster_flags(
    partition: str | None, account: str | None, array: int | None, gpus: int | None, time_min: int | None
) -> dict:
    """The flags as profile keys (None: not given, the profile's or the default value stays)."""
    return {"partition": partition, "account": account, "array": array, "train.gpus": gpus, "train.time_min": time_min}


def check_launcher(launcher: str) -> None:
    from xares_llm.launch.settings import LAUNCHERS

    if launcher not in LAUNCHERS:
        raise typer.BadParameter(f"use one of {', '.join(LAUNCHERS)}", param_hint="--launcher")
    if launcher == "local":
        raise typer.BadParameter("--dry-run prints a launcher's jobs: add --launcher slurm", param_hint="--dry-run")


def launch_run(
    spec, launcher: str, profile: Path | None, flags: dict, dry_run: bool, follow: bool, extract_only: bool = False
) -> None:
    """Print the plan (`dry_run`) or submit it, following the jobs to the end; `extract_only`: the array alone."""
    from xares_llm.launch.plan import plan_launch
    from xares_llm.launch.sbatch import sbatch_script, submit_lines
    from xares_llm.launch.settings import load_settings
    from xares_llm.launch.state import jobs_folder
    from xares_llm.launch.submit import launch

    settings = load_settings(profile, flags)
    if dry_run:
        jobs = plan_launch(spec, settings, extract_only)
        for job in jobs:
            after = f" after {', '.join(job.after)}" if job.after else ""
            size = f" (array of {job.array})" if job.array else ""
            out.print(f"# job {job.name}{size}{after}", highlight=False, soft_wrap=True)
        folder = jobs_folder(spec.group)
        for job in jobs:
            out.print(f"\n# ---- {folder}/{job.name}.sbatch ----", highlight=False, soft_wrap=True)
            out.print(sbatch_script(job, settings, str(folder)), end="", highlight=False, markup=False, soft_wrap=True)
        out.print("\n# submit in order:", highlight=False, soft_wrap=True)
        for line in submit_lines(jobs, str(folder)):
            out.print(line, highlight=False, markup=False, soft_wrap=True)
        return

    def say(line: str) -> None:
        err.print(line, highlight=False, soft_wrap=True)

    state = launch(spec, settings, launcher, follow=follow, report=say, extract_only=extract_only)
    where = "" if extract_only else f"; report in {spec.group / 'report'}"
    out.print(f"{len(state.jobs)} jobs; `xares jobs {spec.group}` shows them{where}")
