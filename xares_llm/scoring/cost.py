"""What a run cost, stage by stage, beside its score.

- extraction: the store's profile (`<store>/extract-profile.json`, cache/profile.py) records each
  extraction's wall seconds, clips and device. A run is charged the share of it that its tasks' parts
  hold: device-hours per clip over the profile times the clips of the parts the run read. A part
  written by a run whose profile entry is gone (the file keeps 100) is charged at the same rate.
- training and evaluation: `<run>/cost.json` holds one entry per call of a stage (a resumed training
  adds one), written by `xares run` and the launchers: wall seconds, processes (one device each) and
  the device's name. Device-hours are wall hours times processes.
"""

from __future__ import annotations

import json
from pathlib import Path

from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cache.format import PartAttrs, encoder_dir, split_dir
from xares_llm.cache.metadata import complete_part_attrs
from xares_llm.cache.profile import read_profiles
from xares_llm.cache.remote import local_path
from xares_llm.lalm.runs import read_run
from xares_llm.tasks.schema import SPLITS
from xares_llm.tasks.snapshots import read_run_tasks

COST_FILE = "cost.json"
STAGES = ("training", "evaluation")


def record_stage(run_dir: Path, stage: str, wall_s: float, processes: int, device: str, name: str) -> None:
    """Append one call of a stage to `<run>/cost.json` (rank 0 only: it counts every process)."""
    path = Path(run_dir) / COST_FILE
    entries = read_stage_records(run_dir)
    entries.append(
        {"stage": stage, "wall_s": round(wall_s, 3), "processes": processes, "device": device, "device_name": name}
    )
    atomic_write_text(path, json.dumps(entries, indent=1) + "\n")


def read_stage_records(run_dir: Path) -> list[dict]:
    try:
        entries = json.loads((Path(run_dir) / COST_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def run_cost(run_dir: Path, tasks: list[str]) -> dict:
    """Device-hours per stage and in all, with the device names; see the module docstring."""
    info = read_run(run_dir)
    cost: dict = {"extraction": None}
    if info is not None:
        names = list(dict.fromkeys([*info.train_tasks, *tasks]))
        datasets = [t.dataset.name for t in read_run_tasks(run_dir, names)]
        cost["extraction"] = extraction_share(info.cache_root, info.encoder_id, datasets)
    records = read_stage_records(run_dir)
    for stage in STAGES:
        cost[stage] = stage_hours([e for e in records if e.get("stage") == stage])
    cost["device_hours"] = total_hours(cost)
    return cost


def stage_hours(entries: list[dict]) -> dict | None:
    """One stage's wall and device hours over its calls; None when it never ran here."""
    if not entries:
        return None
    wall_s = [float(e.get("wall_s", 0)) for e in entries]
    return {
        "wall_hours": round(sum(wall_s) / 3600, 6),
        "device_hours": round(
            sum(w * int(e.get("processes", 1)) for w, e in zip(wall_s, entries, strict=True)) / 3600, 6
        ),
        "devices": sorted({str(e.get("device_name")) for e in entries}),
    }


def total_hours(cost: dict) -> float | None:
    """The stages' device-hours summed; None when no stage is known."""
    known = [cost[s]["device_hours"] for s in ("extraction", *STAGES) if cost.get(s)]
    return round(sum(known), 6) if known else None


def store_parts(cache_root: str | None, encoder_id: str, datasets: list[str]) -> list[PartAttrs] | None:
    """The attrs of every complete part of `datasets` in the store, each read once; None without the cache.

    A URL cache is looked up in its local mirror (cache/remote.py), which holds every part the run read.
    """
    root = None if cache_root is None else local_path(cache_root)
    if root is None or not root.is_dir():
        return None
    return [
        attrs
        for dataset in sorted(set(datasets))
        for split in SPLITS
        for _, attrs in complete_part_attrs(split_dir(root, encoder_id, dataset, split))
    ]


def extraction_share(cache_root: str | None, encoder_id: str, datasets: list[str]) -> dict | None:
    """This run's share of the store's extraction profile; None without the cache or a profile."""
    root = None if cache_root is None else local_path(cache_root)
    if root is None or not root.is_dir():
        return None
    profiles = read_profiles(encoder_dir(root, encoder_id))
    profiled_clips = sum(int(p.get("clips", 0)) for p in profiles)
    if not profiled_clips:
        return None
    hours = sum(float(p.get("wall_s", 0)) for p in profiles) / 3600
    clips = sum(attrs.n_clips for attrs in store_parts(cache_root, encoder_id, datasets))
    return {
        "device_hours": round(hours * clips / profiled_clips, 6),
        "clips": clips,
        "profile_clips": profiled_clips,
        "profile_device_hours": round(hours, 6),
        "devices": sorted({str(p.get("device_name") or p.get("device")) for p in profiles}),
    }


def sum_costs(costs: list[dict]) -> dict:
    """A seed group's cost: one extraction (the seeds share it), their trainings and evaluations summed."""
    group: dict = {"extraction": next((c["extraction"] for c in costs if c.get("extraction")), None)}
    for stage in STAGES:
        known = [c[stage] for c in costs if c.get(stage)]
        group[stage] = (
            {
                "wall_hours": round(sum(k["wall_hours"] for k in known), 6),
                "device_hours": round(sum(k["device_hours"] for k in known), 6),
                "devices": sorted({d for k in known for d in k["devices"]}),
            }
            if known
            else None
        )
    group["device_hours"] = total_hours(group)
    return group
