"""`--dry-run`: the plan as plain sbatch scripts, and the shell lines that submit them in order.

The scripts run the same `xares` commands as the submitit jobs, so a cluster without submitit (or a
user who wants to edit the scripts) gets the same launch by hand.
"""

from __future__ import annotations

from xares_llm.launch.plan import PlannedJob
from xares_llm.launch.settings import ClusterSettings


def time_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def sbatch_script(job: PlannedJob, settings: ClusterSettings, log_dir: str) -> str:
    """One job's script; dependencies are given on the sbatch command line (`submit_lines`)."""
    res = job.resources
    gpus = res.gpus if job.stage == "train" else min(res.gpus, 1)  # only training spreads over several GPUs
    lines = ["#!/bin/bash", f"#SBATCH --job-name=xares-{job.name}"]
    for flag, value in (("partition", settings.partition), ("account", settings.account), ("qos", settings.qos)):
        if value:
            lines.append(f"#SBATCH --{flag}={value}")
    if settings.constraint:
        lines.append(f"#SBATCH --constraint={settings.constraint}")
    lines += [f"#SBATCH --time={time_text(res.time_min)}", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1"]
    lines.append(f"#SBATCH --cpus-per-task={res.cpus}")
    if gpus:
        lines.append(f"#SBATCH --gpus-per-node={gpus}")
    lines += [f"#SBATCH --mem={res.mem_gb}G", "#SBATCH --requeue"]  # a preempted job is requeued and resumes
    if job.array:
        lines.append(f"#SBATCH --array=1-{job.array}%{settings.array_parallelism}")
        lines.append(f"#SBATCH --output={log_dir}/%x-%A_%a.out")
    else:
        lines.append(f"#SBATCH --output={log_dir}/%x-%j.out")
    lines += ["", "set -euo pipefail", *settings.setup]
    for command in job.command_lines():
        if gpus > 1:  # one process per GPU, the ranks from torchrun
            torchrun = f"torchrun --standalone --nproc_per_node {gpus} -m xares_llm.cli.main "
            command = command.replace("xares ", torchrun, 1)
        lines.append(command)
    return "\n".join(lines) + "\n"


def submit_lines(jobs: list[PlannedJob], script_dir: str) -> list[str]:
    """`sbatch --parsable` in plan order, each job after the ones it depends on (afterok)."""
    lines = []
    for job in jobs:
        var = job.name.upper().replace("-", "_")
        after = ":".join(f"${{{a.upper().replace('-', '_')}}}" for a in job.after)
        dependency = f" --dependency=afterok:{after}" if after else ""
        lines.append(f"{var}=$(sbatch --parsable{dependency} {script_dir}/{job.name}.sbatch)")
    return lines
