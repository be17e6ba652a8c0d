"""Seed groups: one extraction, one training + evaluation per seed, and the group's summary file.

::

    <group>/seed-42/          a run dir (run.json, predictions/, scores.json), the reference's seed
    <group>/seed-43/ ...      the same settings with another seed
    <group>/seeds.json        GroupSummary: per task and track, each seed's score, the mean and sd

Only the reference's seed can be comparable with the reference (the seed is a score field of the
recipe, `xares_llm/scoring/reference.py`), so the summary names that run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.errors import XaresError
from xares_llm.scoring.cost import sum_costs
from xares_llm.scoring.score import SCORES_JSON

GROUP_FILE = "seeds.json"
REFERENCE_SEED = 42  # configs/recipes/reference.yaml


def parse_seeds(count: int | None, listed: str | None) -> list[int] | None:
    """`--seeds N` (42, 43, ...) or `--seed 42,43,44`; the reference's seed first when present. None: one run."""
    if count is not None and listed is not None:
        raise XaresError("give --seeds N or --seed LIST, not both")
    if count is not None:
        if count < 1:
            raise XaresError(f"--seeds is a number of seeds, 1 or more; got {count}")
        return list(range(REFERENCE_SEED, REFERENCE_SEED + count))
    if listed is None:
        return None
    try:
        seeds = [int(s) for s in listed.split(",") if s.strip()]
    except ValueError:
        raise XaresError(f"--seed takes integers separated by commas, like 42,43,44; got {listed!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise XaresError(f"--seed needs distinct integers, like 42,43,44; got {listed!r}")
    return sorted(seeds, key=lambda s: s != REFERENCE_SEED)  # stable: the rest keep their order


def seed_run_dir(group: Path, seed: int) -> Path:
    return Path(group) / f"seed-{seed}"


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); no sd from one value."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def _spread(by_seed: dict[int, float]) -> dict:
    mean, sd = mean_sd(list(by_seed.values()))
    return {"mean": mean, "sd": sd, "seeds": {str(s): v for s, v in by_seed.items()}}


def write_group_summary(group: Path, runs: dict[int, Path]) -> dict:
    """Summarise the seeds' scores.json into `<group>/seeds.json`; returns what it wrote."""
    scores = {}
    for seed, run_dir in runs.items():
        path = Path(run_dir) / SCORES_JSON
        if not path.is_file():
            raise XaresError(f"{path}: missing; score the seed's run first (`xares score {run_dir}`)")
        scores[seed] = json.loads(path.read_text())
    tasks = sorted({name for s in scores.values() for name in s["tasks"]})
    tracks = sorted({name for s in scores.values() for name in s["tracks"]})
    reference = REFERENCE_SEED if REFERENCE_SEED in runs else None
    summary = {
        "seeds": list(runs),
        "runs": {str(seed): Path(run_dir).name for seed, run_dir in runs.items()},
        "reference_seed": reference,
        "reference_run": Path(runs[reference]).name if reference is not None else None,
        # the reference's seed run only: other seeds differ from the reference recipe in `seed`
        "comparable_to_reference": bool(reference is not None and scores[reference]["comparable_to_reference"]),
        "tasks": {
            t: _spread({seed: s["tasks"][t]["score"] for seed, s in scores.items() if t in s["tasks"]}) for t in tasks
        },
        "tracks": {
            t: _spread({seed: s["tracks"][t] for seed, s in scores.items() if t in s["tracks"]}) for t in tracks
        },
        "overall": _spread({seed: s["overall"] for seed, s in scores.items()}),
        "cost": sum_costs([s.get("cost") or {} for s in scores.values()]),
    }
    atomic_write_text(Path(group) / GROUP_FILE, json.dumps(summary, indent=2))
    return summary


def read_group_summary(group: Path) -> dict | None:
    path = Path(group) / GROUP_FILE
    return json.loads(path.read_text()) if path.is_file() else None
