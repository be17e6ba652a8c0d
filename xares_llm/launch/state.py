"""`<group>/jobs/jobs.json`: every job a launch submitted, its attempts and outcome, for `xares jobs`.

submitit keeps its own files (the pickled job, logs, results) in `<group>/jobs/<job id>_*`; this file
adds what the scheduler does not know: which job of the plan each id is, its attempt, and why it failed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text

JOBS_DIR = "jobs"
JOBS_FILE = "jobs.json"


@dataclass
class JobRecord:
    name: str  # the planned job: extract, train-seed-42, summary
    job_id: str  # the scheduler's id (Slurm job id, or the local process id)
    task: int | None = None  # the array task's slice K
    attempt: int = 1
    status: str = "submitted"  # submitted, done, killed (resubmitted), failed
    message: str = ""  # why it failed, one line
    log: str = ""  # its stderr file

    @property
    def label(self) -> str:
        return self.name if self.task is None else f"{self.name}[{self.task}]"


@dataclass
class LaunchState:
    folder: Path
    launcher: str
    jobs: list[JobRecord] = field(default_factory=list)

    def add(self, record: JobRecord) -> JobRecord:
        self.jobs.append(record)
        self.save()
        return record

    def save(self) -> None:
        data = {"launcher": self.launcher, "jobs": [asdict(j) for j in self.jobs]}
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / JOBS_FILE, json.dumps(data, indent=1) + "\n")


def jobs_folder(group: Path) -> Path:
    return Path(group) / JOBS_DIR


def read_state(group: Path) -> LaunchState | None:
    """The launch recorded under a seed group (or its jobs/ folder); None when there is none."""
    folder = Path(group) if (Path(group) / JOBS_FILE).is_file() else jobs_folder(group)
    try:
        data = json.loads((folder / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return LaunchState(folder, str(data.get("launcher", "")), [JobRecord(**j) for j in data.get("jobs", [])])


def live_states(state: LaunchState) -> dict[str, str]:
    """Each job id's state as the scheduler reports it now (sacct through submitit); {} when unknown."""
    if state.launcher != "slurm":
        return {}  # local processes belong to the launching process; its record is the state
    try:
        from submitit import SlurmJob
    except ImportError:
        return {}
    return {j.job_id: SlurmJob(state.folder, j.job_id).state for j in state.jobs}
