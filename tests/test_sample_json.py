"""A sample's json is someone else's file: strict JSON, one bad record dropped with its reason, never a crash.

Covers extraction (the decode thread) and `xares tasks new`, plus a bounded fuzz of the json member.
"""

from __future__ import annotations

import json
import random

import pytest
from faults import clips, local_task, task_yaml, write_shard
from typer.testing import CliRunner

from xares_llm.audio.sample_json import MAX_REASON_CHARS, SampleJsonError, parse_sample_json
from xares_llm.cache import part_name, read_part_record
from xares_llm.cli.main import app

SHARD = "js/test/js_0.tar"
HUGE_INT = b'{"label": "dog", "id": ' + b"9" * 5000 + b"}"


def extract(tmp_path, samples):
    write_shard(tmp_path / "data" / SHARD, samples)
    task = task_yaml(tmp_path, local_task("js", [SHARD], [SHARD]))
    args = ["extract", "mel", "--tasks", str(task), "--split", "test", "--max-dropped", "0.5"]
    args += ["--cache", str(tmp_path / "cache"), "--data", str(tmp_path / "data")]
    return CliRunner().invoke(app, args)


def test_nan_and_huge_integers_are_dropped_with_a_reason_and_extraction_goes_on(tmp_path):
    good = clips(4)
    audio = good[0][1]["flac"]
    samples = [
        *good,
        ("nan", {"flac": audio, "json": b'{"label": NaN}'}),
        ("inf", {"flac": audio, "json": b'{"label": "dog", "gain": -Infinity}'}),
        ("huge", {"flac": audio, "json": HUGE_INT}),
    ]
    result = extract(tmp_path, samples)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    record = read_part_record(next((tmp_path / "cache").rglob(part_name(SHARD))))
    assert record.status == "complete" and record.n_clips == 4
    reasons = {d["key"]: (d["reason"], d.get("detail", "")) for d in record.dropped}
    assert reasons["nan"] == ("bad json", "NaN is not JSON (only finite numbers are)")
    assert reasons["inf"] == ("bad json", "-Infinity is not JSON (only finite numbers are)")
    assert reasons["huge"][0] == "bad json" and "4300" in reasons["huge"][1]
    assert len(reasons["huge"][1]) <= MAX_REASON_CHARS


def test_tasks_new_leaves_out_bad_json_and_says_so(tmp_path):
    good = [(k, {"json": f["json"]}) for k, f in clips(6)]
    bad = [("arr", {"json": b"[1, 2]"}), ("huge", {"json": HUGE_INT}), ("nan", {"json": b'{"label": NaN}'})]
    for split in ("train", "test"):
        write_shard(tmp_path / split / "s_0.tar", good + bad)
    args = ["tasks", "new", "sounds", "--train", str(tmp_path / "train/*.tar"), "--test", str(tmp_path / "test/*.tar")]
    result = CliRunner().invoke(app, [*args, "--label-key", "label", "--out", str(tmp_path / "sounds.yaml")])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "1 train shards (6 clips)" in output
    assert "train: 1 samples left out, their json: a JSON list, not an object" in output
    assert "test: 1 samples left out, their json: NaN is not JSON" in output


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One random edit: flip, insert, delete or splice a JSON-ish token."""
    data = bytearray(data)
    tokens = [b"NaN", b"Infinity", b"[" * 3000, b"9" * 5000, b"\xff", b'"', b"{", b"}", b",", b"\x00", b"1e999"]
    op = rng.randrange(4)
    at = rng.randrange(len(data) + 1)
    if op == 0 and data:
        data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
    elif op == 1:
        data[at:at] = rng.choice(tokens)
    elif op == 2:
        del data[at : at + rng.randrange(1, 8)]
    else:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return bytes(data)


def test_fuzz_sample_json_is_an_object_or_one_line(tmp_path):
    rng = random.Random(20)
    seeds = [json.dumps({"label": "dog", "caption": "a dog", "n": [1, 2.5, None]}).encode(), b"{}", b"[]", b""]
    for i in range(3000):
        data = seeds[i % len(seeds)]
        for _ in range(rng.randrange(1, 4)):
            data = mutate(rng, data)
        try:
            value = parse_sample_json(data)
        except SampleJsonError as e:
            message = str(e)
            assert "\n" not in message and 0 < len(message) <= MAX_REASON_CHARS, message
            continue
        assert isinstance(value, dict)
        json.dumps(value, allow_nan=False)  # strict JSON only: no NaN or Infinity got through


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": 1e999}', "out of range"),
        (b"[" * 100000, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        (b'"x"', "a JSON str, not an object"),
    ],
)
def test_hostile_sample_json(data, reason):
    with pytest.raises(SampleJsonError, match=reason):
        parse_sample_json(data)
