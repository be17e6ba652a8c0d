"""Damaged shards: found while streaming, recorded in the part, and never the end of the run.

Each damage is made the way it happens to real files: a download cut short (truncation), a
flipped byte (gzip checksum), a broken header. `read_samples` is checked against webdataset's own
grouping on a sound shard.
"""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
import webdataset as wds
import zarr
from faults import clips, local_task, member_offsets, part_keys, tar_bytes, task_yaml, write_shard
from typer.testing import CliRunner

from xares_llm.audio.shards import ShardDamage, read_samples
from xares_llm.cache import FeatureSplit, part_name, read_part_record
from xares_llm.cli.main import app
from xares_llm.extract.run import extract
from xares_llm.extract.units import is_up_to_date, plan_units


def test_grouping_matches_webdataset(tmp_path):
    members = [
        ("a/b/x.flac", b"1"),
        ("a/b/x.json", b"{}"),
        ("a/b/x.SEG.JSON", b"[]"),  # extensions are lower-cased, everything after the first dot
        ("a/c/x.flac", b"2"),  # same basename, other directory: another sample
        ("noext", b"skipped"),
        ("__meta__", b"skipped"),
        ("__top__.json", b"{}"),  # a key that starts with underscores is still a sample
        ("y.z.flac", b"3"),
        ("y.json", b"{}"),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        directory = tarfile.TarInfo("a")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "s.tar"
    path.write_bytes(raw.getvalue())
    ours = [(s.key, s.files) for s in read_samples(path)]
    theirs = [
        (s["__key__"], {k: v for k, v in s.items() if not k.startswith("__")})
        for s in wds.WebDataset(str(path), shardshuffle=False, empty_check=False)
    ]
    assert ours == theirs and len(ours) == 4


def damaged(kind: str) -> tuple[bytes, list[str] | None, str | None, bool]:
    """(shard bytes, keys read before the damage, the sample cut by it, whether they are trusted).

    A sample is yielded once the next one starts; when the damage hides the next member's name,
    the last sample may have lost files, so it is reported as cut rather than kept.
    """
    samples = clips(6)
    raw = tar_bytes(samples)
    offsets = member_offsets(raw)
    header, data = offsets["clip_003.flac"]
    if kind == "tar cut inside a member":
        return raw[: data + 100], ["clip_000", "clip_001", "clip_002"], "clip_003", True
    if kind == "tar cut between members":
        return raw[:header], ["clip_000", "clip_001"], "clip_002", True
    if kind == "tar header broken":
        broken = bytearray(raw)
        broken[header + 3] ^= 0x20  # the name changes, so the header checksum fails
        return bytes(broken), ["clip_000", "clip_001"], "clip_002", True
    if kind == "gzip cut short":
        packed = gzip.compress(raw, mtime=0)
        return packed[: len(packed) * 6 // 10], None, None, True
    if kind == "gzip checksum wrong":
        packed = bytearray(gzip.compress(raw, mtime=0))
        packed[-7] ^= 0x01  # inside the CRC32 trailer: every byte decompresses, the check fails
        return bytes(packed), None, None, False  # found at the end, whatever was yielded is untrusted
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "tar cut inside a member",
        "tar cut between members",
        "tar header broken",
        "gzip cut short",
        "gzip checksum wrong",
    ],
)
def test_damage_is_found_while_streaming(tmp_path, kind):
    data, expected, cut, trusted = damaged(kind)
    path = tmp_path / ("s.tar.gz" if kind.startswith("gzip") else "s.tar")
    path.write_bytes(data)
    seen = []
    with pytest.raises(ShardDamage) as info:
        for sample in read_samples(path):
            seen.append(sample.key)
    assert info.value.trusted is trusted and "re-download" in str(info.value)
    if expected is None:  # cut somewhere in the compressed stream: a prefix of the samples
        assert seen == [f"clip_{i:03d}" for i in range(len(seen))] and len(seen) < 6
    else:
        assert seen == expected and info.value.cut_sample == cut
    assert [s.key for s in read_samples(write_shard(tmp_path / "good.tar.gz", clips(6)))] == [
        f"clip_{i:03d}" for i in range(6)
    ]


def shard_paths(name: str, n: int, gz: bool = True) -> list[str]:
    return [f"{name}/test/{name}_{i}.tar{'.gz' if gz else ''}" for i in range(n)]


def extract_cli(tmp_path, task, *extra: str):
    args = ["extract", "mel", "--tasks", str(task_yaml(tmp_path, task)), "--split", "test"]
    args += ["--cache", str(tmp_path / "cache"), "--data", str(tmp_path / "data"), *extra]
    return CliRunner().invoke(app, args)


def test_bad_gzip_checksum_stores_no_wrong_label(tmp_path):
    """A flipped byte in a stored (uncompressed) gzip block turns one label into another; only the
    CRC at the end of the member says so. The shard's clips are not stored, the part is partial."""
    test = shard_paths("crc", 1)
    task = local_task("crc", test, test)
    raw = tar_bytes(clips(3))
    packed = gzip.compress(raw, compresslevel=0, mtime=0)
    assert packed.count(b'"label": "rain"') == 1
    corrupt = packed.replace(b'"label": "rain"', b'"label": "cat!"')
    (tmp_path / "data" / test[0]).parent.mkdir(parents=True)
    (tmp_path / "data" / test[0]).write_bytes(corrupt)
    result = extract_cli(tmp_path, task)
    assert result.exit_code == 1, result.output
    assert "1 part is not complete: crc/test/crc_0.tar.gz partial: corrupt gzip data" in result.output
    part = next((tmp_path / "cache").rglob(part_name(test[0])))
    record = read_part_record(part)
    assert record.status == "partial" and record.n_clips == 0 and "CRC check failed" in record.reason
    assert {d["reason"] for d in record.dropped} == {"damaged shard"} and len(record.dropped) == 3
    assert not any("cat!" in str(m) for m in zarr.open_group(part, mode="r")["meta"][:])


def test_truncated_shard_keeps_earlier_clips_and_the_run_goes_on(tmp_path):
    test = shard_paths("cut", 3, gz=False)
    task = local_task("cut", test, test)
    data = tmp_path / "data"
    for i, shard in enumerate(test):
        write_shard(data / shard, clips(5, seed=i, prefix=f"s{i}"))
    raw = (data / test[1]).read_bytes()
    _, offset = member_offsets(raw)["s1_002.flac"]
    (data / test[1]).write_bytes(raw[: offset + 50])  # a download cut short in the third clip

    result = extract_cli(tmp_path, task)
    assert result.exit_code == 1 and "cut/test/cut_1.tar partial: truncated" in result.output, result.output
    parts = {shard: next((tmp_path / "cache").rglob(part_name(shard))) for shard in test}
    assert [read_part_record(parts[s]).status for s in test] == ["complete", "partial", "complete"]
    assert part_keys(parts[test[1]]) == ["s1_000", "s1_001"]  # the clips before the damage
    assert read_part_record(parts[test[1]]).dropped == [
        {"key": "s1_002", "reason": "damaged shard", "detail": "cut by the damage"}
    ]
    encoder_id = next((tmp_path / "cache" / "features").iterdir()).name
    assert len(FeatureSplit(tmp_path / "cache", encoder_id, "cut", "test")) == 10  # readers: complete parts

    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}
    again = extract_cli(tmp_path, task)  # the same damaged bytes: not redone, still reported
    assert again.exit_code == 1 and "3 parts up to date" in again.output and "partial: truncated" in again.output
    assert stamp == {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}

    write_shard(data / test[1], clips(5, seed=1, prefix="s1"))  # re-downloaded: redone
    fixed = extract_cli(tmp_path, task)
    assert fixed.exit_code == 0 and "wrote 1 parts" in fixed.output, fixed.output
    assert part_keys(parts[test[1]]) == [f"s1_{i:03d}" for i in range(5)]


def test_partial_part_whose_shard_is_gone_is_redone(tmp_path):
    """Deleting a bad download is enough: the shard is fetched again and the part redone; a complete
    part without its audio (a shared cache) stays up to date."""
    test = shard_paths("gone", 2, gz=False)
    task = local_task("gone", test, test)
    data = tmp_path / "data"
    for i, shard in enumerate(test):
        write_shard(data / shard, clips(4, seed=i, prefix=f"s{i}"))
    (data / test[1]).write_bytes((data / test[1]).read_bytes()[:3000])
    report = extract("mel", [task], tmp_path / "cache", data, splits=["test"])
    assert [p.status for p in report.not_complete] == ["partial"]
    units = plan_units([task], ["test"], tmp_path / "cache", data, report.encoder_id)
    assert [is_up_to_date(u) for u in units] == [True, True]
    for shard in test:
        (data / shard).unlink()
    assert [is_up_to_date(u) for u in units] == [True, False]
