"""Launchers through submitit's local executor: the real job code path, each job its own process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xares_llm.cache.profile import read_profiles
from xares_llm.cli.main import app
from xares_llm.errors import DataError
from xares_llm.extract.units import parse_slice, slice_units
from xares_llm.launch.plan import RunSpec, plan_launch
from xares_llm.launch.sbatch import sbatch_script
from xares_llm.launch.settings import load_settings
from xares_llm.launch.state import read_state

pytest.importorskip("submitit")

# An encoder whose first forward, in whichever process gets there first, kills that process outright
# (SIGKILL: no exception, no result), as a node failure or an out-of-memory kill would.
KILLED_ONCE = """
import os
import signal
from pathlib import Path

from xares_llm.encoders.mel import MelEncoder

MARKER = Path(__file__).with_name("killed-once")


class KilledOnce(MelEncoder):
    def forward(self, audio, audio_attention_mask=None):
        try:
            os.close(os.open(MARKER, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().forward(audio, audio_attention_mask)
        os.kill(os.getpid(), signal.SIGKILL)
"""

BROKEN = """
from xares_llm.encoders.mel import MelEncoder


class Broken(MelEncoder):
    def forward(self, audio, audio_attention_mask=None):
        raise ValueError("weights not loaded")
"""


def spec_for(tmp_path: Path, demo_store, encoder: str, seeds: list[int]) -> RunSpec:
    return RunSpec(
        encoder, "demo", "demo", {"steps": 4, "batch_size": 4}, str(tmp_path / "cache"), str(demo_store.data_root),
        tmp_path / "group", seeds, threads=1,
    )  # fmt: skip


def test_slices_split_the_plan():
    units = list(range(8))
    slices = [slice_units(units, k, 3) for k in (1, 2, 3)]
    assert sorted(u for s in slices for u in s) == units and [len(s) for s in slices] == [3, 3, 2]
    assert parse_slice("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(DataError, match="--slice"):
            parse_slice(bad)


def test_a_launch_with_a_killed_array_task(demo_store, tmp_path):
    from xares_llm.launch.submit import launch

    encoder = tmp_path / "killed_once.py"
    encoder.write_text(KILLED_ONCE)
    spec = spec_for(tmp_path, demo_store, f"{encoder}:KilledOnce", [42, 43])
    said = []
    state = launch(
        spec, load_settings(None, {"array": 3, "retries": 1}), "submitit-local", poll_s=0.2, report=said.append
    )

    assert (tmp_path / "killed-once").is_file()
    extract = [j for j in state.jobs if j.name == "extract"]
    killed = [j for j in extract if j.status == "killed"]
    assert len(killed) == 1 and sorted(j.task for j in extract if j.status == "done") == [1, 2, 3]
    assert any(f"extract[{killed[0].task}] ended without a result" in line for line in said)
    assert [(j.name, j.status) for j in state.jobs[len(extract) :]] == [
        ("train-seed-42", "done"), ("train-seed-43", "done"), ("summary", "done"),
    ]  # fmt: skip
    (store,) = (tmp_path / "cache" / "features").iterdir()
    assert len(read_profiles(store)) == 3  # three slices wrote parts; the killed task and the seeds' runs none
    group = tmp_path / "group"
    summary = json.loads((group / "seeds.json").read_text())
    assert summary["seeds"] == [42, 43] and summary["reference_run"] == "seed-42"
    for seed in (42, 43):
        assert json.loads((group / f"seed-{seed}" / "scores.json").read_text())["provenance"]["seed"] == seed
    assert "Seed groups" in (group / "report" / "report.md").read_text()
    assert read_state(group).jobs == state.jobs  # what `xares jobs` reads
    listing = CliRunner().invoke(app, ["jobs", str(group)])
    assert listing.exit_code == 0 and "killed" in listing.output and "summary" in listing.output


def test_a_failing_job_stops_the_launch_with_its_error(demo_store, tmp_path):
    from xares_llm.launch.submit import LaunchError, launch

    encoder = tmp_path / "broken.py"
    encoder.write_text(BROKEN)
    spec = spec_for(tmp_path, demo_store, f"{encoder}:Broken", [42])
    with pytest.raises(
        LaunchError, match=r"job extract\[1\] \(\d+\) failed: EncoderError: .*weights not loaded.*; log "
    ):
        launch(spec, load_settings(None, {"array": 1}), "submitit-local", poll_s=0.2)
    state = read_state(tmp_path / "group")
    assert [(j.name, j.status) for j in state.jobs] == [("extract", "failed")]  # nothing trained on it


EXPECTED_EXTRACT = textwrap.dedent("""\
    #!/bin/bash
    #SBATCH --job-name=xares-extract
    #SBATCH --partition=gpu
    #SBATCH --account=lab
    #SBATCH --time=02:00:00
    #SBATCH --nodes=1
    #SBATCH --ntasks-per-node=1
    #SBATCH --cpus-per-task=8
    #SBATCH --gpus-per-node=1
    #SBATCH --mem=64G
    #SBATCH --requeue
    #SBATCH --array=1-16%64
    #SBATCH --output=/shared/runs/wb/jobs/%x-%A_%a.out

    set -euo pipefail
    source /shared/venv/bin/activate
    xares extract whisper-base --tasks task1 --cache /shared/cache --data /shared/data --dtype float16 \
--encoder-precision fp32 --slice ${SLURM_ARRAY_TASK_ID}/16
    """)


def test_dry_run_prints_the_sbatch_scripts(tmp_path):
    profile = tmp_path / "cluster.yaml"
    profile.write_text("partition: gpu\naccount: lab\narray: 8\nsetup: [source /shared/venv/bin/activate]\n"
                       "extract: {time_min: 120}\ntrain: {gpus: 4}\n")  # fmt: skip
    settings = load_settings(profile, {"array": 16})  # the flag wins over the profile
    spec = RunSpec(
        "whisper-base", "task1", "reference", {}, "/shared/cache", "/shared/data", Path("/shared/runs/wb"), [42]
    )
    extract, train, _ = plan_launch(spec, settings)
    assert sbatch_script(extract, settings, "/shared/runs/wb/jobs") == EXPECTED_EXTRACT
    assert "torchrun --standalone --nproc_per_node 4 -m xares_llm.cli.main run whisper-base" in sbatch_script(
        train, settings, "/shared/runs/wb/jobs"
    )
    args = ["run", "mel", "--mixture", "demo", "--recipe", "demo", "--steps", "4", "--seeds", "2"]
    args += ["--launcher", "slurm", "--dry-run", "--cluster-profile", str(profile), "--run-dir", str(tmp_path / "g")]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    assert "--slice ${SLURM_ARRAY_TASK_ID}/8" in result.output and "--array=1-8%64" in result.output
    assert "--dependency=afterok:${TRAIN_SEED_42}:${TRAIN_SEED_43}" in result.output
    assert not (tmp_path / "g").exists()  # a dry run submits and writes nothing


def test_bad_cluster_profile_names_the_field(tmp_path):
    profile = tmp_path / "cluster.yaml"
    profile.write_text("partition: gpu\narray: 0\n")
    args = ["run", "mel", "--mixture", "demo", "--recipe", "demo", "--launcher", "slurm", "--dry-run"]
    args += ["--cluster-profile", str(profile)]
    result = CliRunner().invoke(app, [*args, "--run-dir", str(tmp_path / "g"), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1 and "cluster.yaml: field 'array'" in result.output


def test_extract_alone_as_an_array(tmp_path):
    args = ["extract", "mel", "--tasks", "demo", "--split", "test", "--launcher", "slurm", "--array", "2", "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "c"), "--jobs-dir", str(tmp_path / "j")])
    assert result.exit_code == 0, result.output
    assert "xares extract mel --tasks demo --split test --cache" in result.output
    assert "--slice ${SLURM_ARRAY_TASK_ID}/2" in result.output and "train-seed" not in result.output
    tuned = CliRunner().invoke(app, [*args, "--decode-workers", "2", "--cache", str(tmp_path / "c")])
    assert tuned.exit_code == 2 and "--decode-workers" in tuned.output


def test_a_launch_needs_a_run_dir(tmp_path):
    args = ["run", "mel", "--mixture", "demo", "--recipe", "demo", "--launcher", "slurm", "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "c")])
    assert result.exit_code == 2 and "--run-dir" in result.output


def test_a_preempted_job_is_requeued_with_its_arguments(tmp_path, demo_store):
    from submitit.helpers import DelayedSubmission

    from xares_llm.launch.jobs import XaresJob

    job = XaresJob(spec_for(tmp_path, demo_store, "mel", [43]), "extract")
    again = job.checkpoint(2, 3)  # what submitit calls on a timeout or preemption signal
    assert isinstance(again, DelayedSubmission) and again.function is job and again.args == (2, 3)
