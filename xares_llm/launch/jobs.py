"""What each job of a launch runs: library calls equal to its `xares` command line (plan.py).

A job object is pickled by submitit into its job folder and called in the job's process. Its
`checkpoint` method is submitit's hook on a timeout or preemption: the job is requeued with the same
arguments, and the work resumes where the files say it stopped (parts, checkpoints, predictions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xares_llm.launch.plan import RunSpec


@dataclass
class XaresJob:
    spec: RunSpec
    stage: str  # "extract", "train" or "summary"

    def __call__(self, *args: int) -> dict:
        if self.stage == "extract":
            return extract_slice(self.spec, *args)
        if self.stage == "train":
            return train_seeds(self.spec, list(args))
        return summarise(self.spec)

    def checkpoint(self, *args: int):
        """Requeue with the same arguments (submitit calls this on timeout or preemption)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args)


def extract_slice(spec: RunSpec, part: int, parts: int) -> dict:
    """`xares extract ENCODER --tasks MIXTURE --slice K/N`: the K-th slice of the planned parts."""
    from xares_llm.extract.report import not_complete_error
    from xares_llm.extract.run import extract
    from xares_llm.tasks.schema import resolve_tasks

    report = extract(
        spec.encoder, resolve_tasks(spec.mixture), Path(spec.cache), Path(spec.data), splits=spec.splits.split(","),
        encoder_args=spec.encoder_args, device=spec.device, dtype=spec.dtype, precision=spec.encoder_precision,
        threads=spec.threads, part_slice=(part, parts),
    )  # fmt: skip
    if report.not_complete:
        raise not_complete_error(report.not_complete)
    return {"written": len(report.written), "up_to_date": report.up_to_date, "elsewhere": report.elsewhere}


def train_seeds(spec: RunSpec, seeds: list[int]) -> dict:
    """`xares run ... --run-dir GROUP --seed S`: train, evaluate and score each seed (extraction is done)."""
    from xares_llm.cache.root import local_cache_root
    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.metrics import MetricOptions
    from xares_llm.pipeline import run_pipeline

    if int(os.environ.get("SUBMITIT_LOCAL_NTASKS", os.environ.get("SLURM_NTASKS", "1"))) > 1:
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export()  # RANK, WORLD_SIZE, MASTER_ADDR...: what torchrun would set
    result = run_pipeline(
        spec.encoder, spec.mixture, load_recipe(spec.recipe, spec.overrides), Path(spec.cache), Path(spec.data),
        spec.group, encoder_args=spec.encoder_args, encoder_precision=spec.encoder_precision, dtype=spec.dtype,
        device=spec.device, metric_options=MetricOptions(cache_dir=local_cache_root(spec.cache)),
        threads=spec.threads, seeds=seeds,
    )  # fmt: skip
    return {str(s): None if scores is None else scores.overall for s, scores in (result.seeds or {}).items()}


def summarise(spec: RunSpec) -> dict:
    """`xares run ... --seed S1,S2` (every stage complete: seeds.json) and `xares report GROUP --out GROUP/report`."""
    from xares_llm.report import write_report
    from xares_llm.report.load import load_result_dir, unique_labels
    from xares_llm.report.seeds import expand_group_dirs
    from xares_llm.report.tables import build_report

    overall = train_seeds(spec, spec.seeds)
    results = [load_result_dir(p) for p in expand_group_dirs([spec.group])]
    unique_labels(results)
    written = write_report(build_report(results), results, spec.group / "report", ["md", "csv", "html"])
    return {"overall": overall, "report": [str(p) for p in written]}
