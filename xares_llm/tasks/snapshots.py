"""A run dir's copies of its task and mixture configs, as resolved when it started (``tasks/``, ``mixture.yaml``).

Training, evaluation, scoring and the probe all write or read them, so a run is scored with the
configs its predictions were made with, whatever the package holds by then.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.config import read_yaml, validate
from xares_llm.tasks.schema import Mixture, MixtureConfig, TaskConfig, load_task

TASKS_DIR = "tasks"
MIXTURE_FILE = "mixture.yaml"


def write_run_tasks(run_dir: Path, tasks: list[TaskConfig], mixture: Mixture) -> None:
    write_task_snapshots(run_dir, tasks)
    mixture_yaml = yaml.safe_dump(mixture.to_config().model_dump(mode="json"), sort_keys=False)
    atomic_write_text(Path(run_dir) / MIXTURE_FILE, mixture_yaml)


def write_task_snapshots(run_dir: Path, tasks: list[TaskConfig]) -> None:
    """<run>/tasks/<name>.yaml for each task, so scoring reads the configs the predictions were made with."""
    folder = Path(run_dir) / TASKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        atomic_write_text(folder / f"{task.name}.yaml", yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False))


def read_run_tasks(run_dir: Path, names: list[str]) -> list[TaskConfig]:
    """The task configs a run was started with; runs made before snapshots fall back to the package."""
    folder = Path(run_dir) / TASKS_DIR
    return [load_task(str(folder / f"{n}.yaml")) if (folder / f"{n}.yaml").is_file() else load_task(n) for n in names]


def read_run_mixture(run_dir: Path) -> Mixture:
    """The mixture a run trains on, with the task configs it was started with."""
    config = validate(MixtureConfig, read_yaml(Path(run_dir) / MIXTURE_FILE), Path(run_dir) / MIXTURE_FILE)
    names = list(dict.fromkeys([*config.weights, *config.evaluate]))
    tasks = {task.name: task for task in read_run_tasks(run_dir, names)}
    return Mixture(config.name, dict(config.weights), list(config.evaluate), tasks)
