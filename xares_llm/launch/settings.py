"""Cluster settings of a launch: a YAML profile (safe_load), then the flags over it."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from xares_llm.config import validate
from xares_llm.errors import ConfigError

LAUNCHERS = ("local", "slurm", "submitit-local")


class JobResources(BaseModel):
    """What one job asks the scheduler for."""

    model_config = ConfigDict(extra="forbid")

    time_min: int = Field(240, ge=1)  # wall-clock limit; a job that reaches it is requeued and resumes
    gpus: int = Field(1, ge=0)  # GPUs per job; more than one runs one process per GPU, as torchrun does
    cpus: int = Field(8, ge=1)  # CPU cores per job (decoding audio, loading batches)
    mem_gb: int = Field(64, ge=1)


class ClusterSettings(BaseModel):
    """A cluster profile (`--cluster-profile cluster.yaml`): every field optional."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array: int = Field(4, ge=1)  # extraction tasks: each takes the K-th of N slices of the parts
    array_parallelism: int = Field(64, ge=1)  # extraction tasks running at once
    extract: JobResources = Field(default_factory=JobResources)
    train: JobResources = Field(default_factory=lambda: JobResources(time_min=1440))
    summary: JobResources = Field(default_factory=lambda: JobResources(time_min=60, cpus=4, mem_gb=32))  # rescoring
    retries: int = Field(2, ge=0)  # resubmissions of a job killed or preempted before it finished
    setup: list[str] = Field(default_factory=list)  # shell lines run first in every job (module load, venv)


def load_settings(profile: Path | None, flags: dict) -> ClusterSettings:
    """The profile's settings, then every flag that was given (dotted keys reach the job sections)."""
    data: dict = {}
    if profile is not None:
        try:
            data = yaml.safe_load(Path(profile).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{profile}: cannot read the cluster profile ({e})") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{profile}: a cluster profile is a mapping of settings (partition, account, ...)")
    for key, value in flags.items():
        if value is None:
            continue
        *sections, name = key.split(".")
        target = data
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return validate(ClusterSettings, data, profile or "cluster flags")
