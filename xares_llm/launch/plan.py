"""The jobs of a launch, each as the `xares` command line it is equivalent to.

`xares run ENCODER --seeds 2 --launcher slurm` becomes:

1. ``extract``: a job array of N tasks, task K running ``xares extract ... --slice K/N``;
2. ``train-seed-S``: one job per seed after the array (afterok), running ``xares run ... --seed S``
   (its extraction finds every part done; it trains, evaluates and scores ``<group>/seed-S``);
3. ``summary``: after every seed, ``xares run ... --seed S1,S2`` (every stage is complete: it writes
   ``<group>/seeds.json``) and ``xares report <group> --out <group>/report``.

A resubmitted job does the same command again, and each command resumes: extraction by part, training
from its last checkpoint, evaluation by task.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from xares_llm.launch.settings import ClusterSettings, JobResources

ARRAY_TASK = "${SLURM_ARRAY_TASK_ID}"  # 1..N in the sbatch script (--array=1-N)


@dataclass
class RunSpec:
    """What `xares run` was asked, enough to repeat it in any job."""

    encoder: str
    mixture: str  # a mixture name or YAML path (an extraction alone: the --tasks list)
    recipe: str
    overrides: dict  # --set and --steps, as recipe keys
    cache: str
    data: str
    group: Path  # the seed group's folder: seed-S/ run dirs, seeds.json, report/, jobs/
    seeds: list[int]
    encoder_args: str | None = None
    encoder_precision: str = "fp32"
    dtype: str = "float16"
    device: str | None = None
    threads: int | None = None
    splits: str = "train,test"  # what the extraction array extracts (`xares extract --split`)
    resampler: str = "sinc"  # `--resampler`: sinc (the reference) or soxr

    def common_args(self) -> list[str]:
        args = ["--cache", self.cache, "--data", self.data, "--dtype", self.dtype]
        args += ["--encoder-precision", self.encoder_precision]
        if self.resampler != "sinc":
            args += ["--resampler", self.resampler]
        if self.encoder_args:
            args += ["--encoder-args", self.encoder_args]
        if self.device:
            args += ["--device", self.device]
        if self.threads:
            args += ["--threads", str(self.threads)]
        return args

    def extract_args(self, part: str, parts: int) -> list[str]:
        split = ["--split", self.splits] if self.splits != "train,test" else []
        args = ["extract", self.encoder, "--tasks", self.mixture, *split, *self.common_args()]
        return [*args, "--slice", f"{part}/{parts}"]

    def run_args(self, seeds: list[int]) -> list[str]:
        args = ["run", self.encoder, "--mixture", self.mixture, "--recipe", self.recipe, *self.common_args()]
        for key, value in self.overrides.items():
            args += ["--set", f"{key}={json.dumps(value)}"]
        return [*args, "--run-dir", str(self.group), "--seed", ",".join(str(s) for s in seeds)]

    def report_args(self) -> list[str]:
        return ["report", str(self.group), "--out", str(self.group / "report"), "--format", "md,csv,html"]


@dataclass
class PlannedJob:
    name: str  # extract, train-seed-42, ..., summary
    stage: str  # "extract", "train" or "summary"
    resources: JobResources
    commands: list[list[str]]  # xares argument lists, run in order
    array: int = 0  # tasks of a job array; 0 for a single job
    after: list[str] = field(default_factory=list)  # jobs that must succeed first (afterok)
    seed: int | None = None

    def command_lines(self) -> list[str]:
        """The shell lines; an array task's slice comes from SLURM_ARRAY_TASK_ID."""
        lines = []
        for args in self.commands:
            quoted = " ".join(
                a if a.endswith(f"/{self.array}") and a.startswith(ARRAY_TASK) else shlex.quote(a) for a in args
            )
            lines.append(f"xares {quoted}")
        return lines


def plan_launch(spec: RunSpec, settings: ClusterSettings, extract_only: bool = False) -> list[PlannedJob]:
    """The extraction array, one training job per seed, the summary: see the module docstring.
    `extract_only` (`xares extract --launcher`): the array alone."""
    n = settings.array
    extract = PlannedJob("extract", "extract", settings.extract, [spec.extract_args(ARRAY_TASK, n)], array=n)
    if extract_only:
        return [extract]
    trains = [
        PlannedJob(f"train-seed-{s}", "train", settings.train, [spec.run_args([s])], after=["extract"], seed=s)
        for s in spec.seeds
    ]
    summary = PlannedJob(
        "summary",
        "summary",
        settings.summary,
        [spec.run_args(spec.seeds), spec.report_args()],
        after=[t.name for t in trains],
    )
    return [extract, *trains, summary]
