"""Submit a launch's jobs through submitit and follow them to the end.

Slurm jobs are submitted with ``--dependency=afterok`` on the jobs before them, so a launch that is
not followed (`follow=False`) still runs in order. A followed launch waits for each stage: a job
that ended without a result (killed, preempted past submitit's own requeue, a node failure) is
resubmitted up to `settings.retries` times and resumes from its files; a job that raised stops the
launch with the error's last line and the job's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xares_llm.errors import XaresError
from xares_llm.launch.jobs import XaresJob
from xares_llm.launch.plan import PlannedJob, RunSpec, plan_launch
from xares_llm.launch.settings import ClusterSettings
from xares_llm.launch.state import JobRecord, LaunchState, jobs_folder


class LaunchError(XaresError):
    """A job of a launch failed; the message names the job, its error and its log."""


@dataclass
class Running:
    record: JobRecord
    job: Any  # a submitit Job
    planned: PlannedJob
    args: tuple[int, ...]


def require_submitit():
    try:
        import submitit
    except ImportError:
        raise XaresError("this launcher needs submitit: pip install 'xares-llm[slurm]'") from None
    return submitit


def make_executor(launcher: str, folder: Path, planned: PlannedJob, settings: ClusterSettings, after: list[str]):
    """A submitit executor for one planned job: Slurm, or local processes (`submitit-local`)."""
    submitit = require_submitit()
    cluster = "slurm" if launcher == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    res = planned.resources
    gpus = res.gpus if planned.stage == "train" else min(res.gpus, 1)  # only training spreads over several
    tasks = max(1, gpus)  # one process per GPU, as torchrun would start
    params: dict = {"name": f"xares-{planned.name}", "timeout_min": res.time_min, "tasks_per_node": tasks}
    params["gpus_per_node"] = gpus  # the local executor sets CUDA_VISIBLE_DEVICES from it
    if cluster == "slurm":
        params |= {"cpus_per_task": max(1, res.cpus // tasks), "mem_gb": res.mem_gb}
        optional = {"partition": settings.partition, "account": settings.account, "qos": settings.qos}
        optional["constraint"] = settings.constraint
        params |= {f"slurm_{k}": v for k, v in optional.items() if v}
        params["slurm_setup"] = list(settings.setup)
        params["slurm_array_parallelism"] = settings.array_parallelism
        if after:
            params["slurm_additional_parameters"] = {"dependency": "afterok:" + ":".join(after)}
    executor.update_parameters(**params)
    return executor


def outcome(job: Any) -> tuple[str, str]:
    """("done" | "killed" | "failed", one line): killed = no result at all, failed = it raised."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    try:
        job.result()
    except FailedJobError as e:
        return "failed", error_line(str(e))
    except UncompletedJobError as e:
        return "killed", str(e).splitlines()[0]
    return "done", ""


def error_line(text: str) -> str:
    """The raised error's own line from submitit's message: the traceback's last line, module path cut."""
    lines = [line.strip() for line in text.split("-" * 22)[1].splitlines() if line.strip()] if "-" * 22 in text else []
    last = lines[-1] if lines else text.strip().splitlines()[0]
    kind, sep, message = last.partition(": ")
    return f"{kind.rsplit('.', 1)[-1]}: {message}" if sep else last


def launch(
    spec: RunSpec,
    settings: ClusterSettings,
    launcher: str,
    follow: bool = True,
    poll_s: float | None = None,
    report: Callable[[str], None] | None = None,
    extract_only: bool = False,
) -> LaunchState:
    """Submit the plan (plan.py); with `follow`, wait for every job, resubmitting killed ones."""
    if launcher != "slurm" and not follow:
        raise XaresError("only --launcher slurm can leave its jobs running: local jobs need the launching process")
    say = report or (lambda line: None)
    poll = poll_s if poll_s is not None else (30.0 if launcher == "slurm" else 0.5)
    state = LaunchState(jobs_folder(spec.group), launcher)
    ids: dict[str, list[str]] = {}
    plan = plan_launch(spec, settings, extract_only)
    for stage in dict.fromkeys(p.stage for p in plan):  # the seeds' jobs of a stage run side by side
        running = []
        for planned in [p for p in plan if p.stage == stage]:
            after = [i for name in planned.after for i in ids[name]] if launcher == "slurm" else []
            submitted = submit(planned, spec, settings, launcher, state, after)
            ids[planned.name] = sorted({r.job.job_id.split("_")[0] for r in submitted})
            say(f"submitted {planned.name}: job {', '.join(ids[planned.name])}")
            running += submitted
        if follow:
            wait(running, spec, settings, launcher, state, poll, say)
    return state


def submit(
    planned: PlannedJob, spec: RunSpec, settings: ClusterSettings, launcher: str, state: LaunchState, after: list[str]
) -> list[Running]:
    executor = make_executor(launcher, state.folder, planned, settings, after)
    job = XaresJob(spec, planned.stage)
    if planned.array:
        parts = list(range(1, planned.array + 1))
        jobs = executor.map_array(job, parts, [planned.array] * planned.array)
        args = [(k, planned.array) for k in parts]
    else:
        jobs = [executor.submit(job, *([planned.seed] if planned.seed is not None else []))]
        args = [(planned.seed,) if planned.seed is not None else ()]
    return [
        Running(
            state.add(JobRecord(planned.name, j.job_id, a[0] if planned.array else None, log=str(j.paths.stderr))),
            j,
            planned,
            a,
        )
        for j, a in zip(jobs, args, strict=True)
    ]


def wait(
    running: list[Running],
    spec: RunSpec,
    settings: ClusterSettings,
    launcher: str,
    state: LaunchState,
    poll_s: float,
    say: Callable[[str], None],
) -> None:
    """Until every job ended: killed ones resubmitted (up to `settings.retries`), failures raised together."""
    pending, failed = list(running), []
    while pending:
        for item in [r for r in pending if r.job.done()]:
            pending.remove(item)
            status, line = outcome(item.job)
            item.record.status, item.record.message = status, line
            if status == "killed" and item.record.attempt <= settings.retries:
                executor = make_executor(launcher, state.folder, item.planned, settings, [])
                job = executor.submit(XaresJob(spec, item.planned.stage), *item.args)
                record = JobRecord(
                    item.record.name, job.job_id, item.record.task, item.record.attempt + 1, log=str(job.paths.stderr)
                )
                pending.append(Running(state.add(record), job, item.planned, item.args))
                say(f"{item.record.label} ended without a result ({line}); resubmitted as job {job.job_id}")
            elif status != "done":
                failed.append(item.record)
            state.save()
        if pending:
            time.sleep(poll_s)
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more job(s); see `xares jobs {spec.group}`)" if len(failed) > 1 else ""
        raise LaunchError(f"job {first.label} ({first.job_id}) {first.status}: {first.message}; log {first.log}{more}")
