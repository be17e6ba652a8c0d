"""Every clip `xares extract` does not store is counted with its reason; too many make the run fail.

The encoder is tests/fixtures/encoders/faulty.py: NaN for one marked clip, float16 overflow for
another, a RuntimeError (retried clip by clip) for a third, and a real bug (AssertionError,
KeyError) for a fourth.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from faults import clips, flac, local_task, task_yaml, write_shard
from typer.testing import CliRunner

from xares_llm.audio.demo_data import tone
from xares_llm.cache import FeatureSplit, part_name, read_part_record
from xares_llm.cli.main import app

FAULTY = Path(__file__).parent / "fixtures" / "encoders" / "faulty.py"
SHARD = "faults/test/faults_0.tar"


def marked(first: float, seed: int) -> bytes:
    audio = tone(440.0, 0.4, np.random.default_rng(seed))
    audio[0] = first
    return flac(audio)


def label(value: str = "dog") -> bytes:
    return json.dumps({"label": value}).encode()


def faulty_shard(data: Path, good: int, with_bug: bool = False) -> None:
    """`good` sound clips, then one clip of each kind that cannot be used."""
    samples = clips(good)
    samples += [
        ("no_json", {"flac": clips(1)[0][1]["flac"]}),
        ("no_label", {"flac": clips(1)[0][1]["flac"], "json": json.dumps({"speaker": 3}).encode()}),
        ("undecodable", {"flac": b"fLaC not really", "json": label()}),
        ("nan", {"flac": marked(0.5, 1), "json": label()}),
        ("huge", {"flac": marked(0.25, 2), "json": label()}),
        ("oom", {"flac": marked(0.125, 3), "json": label()}),
    ]
    if with_bug:
        samples.append(("bug", {"flac": marked(0.75, 4), "json": label()}))
    write_shard(data / SHARD, samples)


def run(tmp_path: Path, *extra: str, bug: str = "assert"):
    task = local_task("faults", [SHARD], [SHARD])
    args = [
        "extract",
        str(FAULTY),
        "--encoder-args",
        json.dumps({"bug": bug}),
        "--tasks",
        str(task_yaml(tmp_path, task)),
    ]
    args += ["--split", "test", "--cache", str(tmp_path / "cache"), "--data", str(tmp_path / "data"), *extra]
    return CliRunner().invoke(app, args)


def the_part(tmp_path: Path) -> Path:
    return next((tmp_path / "cache").rglob(part_name(SHARD)))


def test_every_unused_clip_is_counted_by_reason(tmp_path):
    faulty_shard(tmp_path / "data", good=6)
    result = run(tmp_path, "--max-dropped", "0.5")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "6 clips dropped:" in output
    for reason in ("no json 1", "no label 1", "undecodable 1", "nonfinite 2", "encoder failure 1"):
        assert reason in output
    record = read_part_record(the_part(tmp_path))
    assert record.status == "complete" and record.n_clips == 6 and record.nonfinite == 0
    reasons = {d["key"]: (d["reason"], d.get("detail", "")) for d in record.dropped}
    assert re.fullmatch(r"(\d+) of \1 frames hold NaN or Inf \(as computed\)", reasons["nan"][1])
    assert re.fullmatch(r"(\d+) of \1 frames hold NaN or Inf", reasons["huge"][1])  # inf only once float16
    assert reasons["nan"][0] == reasons["huge"][0] == "nonfinite"
    assert reasons["oom"] == ("encoder failure", "RuntimeError: CUDA out of memory (simulated)")
    assert reasons["no_label"][0] == "no label" and "label" in reasons["no_label"][1]
    assert set(reasons) == {"no_json", "no_label", "undecodable", "nan", "huge", "oom"}


def test_too_many_dropped_is_not_complete_and_fails_the_run(tmp_path):
    faulty_shard(tmp_path / "data", good=6)
    result = run(tmp_path)  # the default --max-dropped is 1 %
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: 1 part is not complete: faults/test/faults_0.tar failed: "
        "6 of 12 clips dropped, more than --max-dropped 0.01"
    ]
    record = read_part_record(the_part(tmp_path))
    assert record.status == "failed" and len(record.dropped) == 6  # kept, with its reasons, for a look
    encoder_id = the_part(tmp_path).parents[2].name
    assert len(FeatureSplit(tmp_path / "cache", encoder_id, "faults", "test")) == 0  # readers do not see it
    verify = CliRunner().invoke(app, ["cache", "verify", encoder_id, "--cache", str(tmp_path / "cache")])
    assert verify.exit_code == 1 and "failed: 6 of 12 clips dropped" in " ".join(verify.output.split())
    assert run(tmp_path, "--max-dropped", "0.5").exit_code == 0  # a failed part is redone on the next run


def test_all_clips_dropped_is_never_complete(tmp_path):
    write_shard(tmp_path / "data" / SHARD, [(f"k{i}", {"flac": clips(1)[0][1]["flac"]}) for i in range(3)])
    result = run(tmp_path, "--max-dropped", "1")
    assert result.exit_code == 1 and "failed: 3 of 3 clips dropped" in result.output
    assert "3 clips dropped: no json 3" in " ".join(result.output.split())


def test_encoder_bug_stops_the_run_in_one_line(tmp_path):
    faulty_shard(tmp_path / "data", good=2, with_bug=True)
    line = next(i for i, text in enumerate(FAULTY.read_text().splitlines(), 1) if "assert not" in text)
    for bug, expected in (
        ("assert", f"raised AssertionError: a marked clip at {FAULTY}:{line} in forward"),
        ("key", "raised KeyError: 'layer_7' at "),
    ):
        result = run(tmp_path, "--max-dropped", "1", bug=bug)
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        errors = [text for text in result.output.splitlines() if text.startswith("error:")]
        assert len(errors) == 1 and f"encoder {str(FAULTY)!r} {expected}" in errors[0], result.output
        assert str(FAULTY) in errors[0]
    assert not list((tmp_path / "cache").rglob("*.lock")) and not list((tmp_path / "cache").rglob("*.tmp-*"))
    assert not list((tmp_path / "cache").rglob("part-*.zarr"))  # the run stopped before writing the part


def test_a_test_clip_dropped_at_extraction_is_scored_as_an_empty_prediction(tmp_path):
    """Dropping clips must never raise a score: a labelled clip the encoder failed on counts as wrong.
    An undecodable clip is in no denominator, as in the reference, and is counted with its reason."""
    from xares_llm.lalm.evaluate import evaluate
    from xares_llm.lalm.recipe import load_recipe
    from xares_llm.lalm.train import train
    from xares_llm.scoring.predictions import read_predictions
    from xares_llm.scoring.score import score_run
    from xares_llm.tasks.schema import single_task_mixture

    faulty_shard(tmp_path / "data", good=6)
    task = local_task("faults", [SHARD], [SHARD])
    args = ["extract", str(FAULTY), "--tasks", str(task_yaml(tmp_path, task)), "--max-dropped", "0.5"]
    result = CliRunner().invoke(app, [*args, "--cache", str(tmp_path / "cache"), "--data", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    encoder_id = re.search(r"encoder-id (\S+)", result.output).group(1)
    run_dir = tmp_path / "run"
    recipe = load_recipe("demo", {"steps": 2, "batch_size": 2})
    train(run_dir, recipe, single_task_mixture(task), encoder_id, tmp_path / "cache")
    rows = {r["key"]: r for r in read_predictions(evaluate(run_dir)[0])}
    dropped = {k: r for k, r in rows.items() if "dropped" in r}
    assert set(dropped) == {"nan", "huge", "oom"}  # labelled; no_json and no_label have no target
    assert all(r["prediction"] == "" and r["references"] == ["dog"] for r in dropped.values())
    scores = score_run(run_dir).tasks["faults"]
    assert scores.n_samples == 9 and scores.n_dropped == 6
    assert scores.test_targets["dropped_scored"] == 3
    assert scores.n_left_out == {"no json": 1, "no label": 1, "undecodable": 1}
    assert "1 no json, 1 no label, 1 undecodable" in (run_dir / "scores.tsv").read_text()
