"""A shard streams through extraction in bounded windows, and the store is the same as if it had not.

Windows of a few clips against whole shards: the same parts, clip order, dropped records (decode
drops, then encoder drops, as a whole-shard run lists them) and damage handling. The part writer
appends frames in whole sharding-codec shards, so the files equal a one-shot write. Batches of an
encoder that pads every window to its maximum input are budgeted by that padded input.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from faults import clips, flac, local_task, tar_bytes, write_shard
from torch import nn

from xares_llm.audio.demo_data import tone
from xares_llm.cache import EncoderInfo, SourceInfo, part_name, read_part_record
from xares_llm.cache import writer as writer_module
from xares_llm.cache.writer import ARRAY_CONFIG, CHUNKS_PER_SHARD, PartWriter, _codecs
from xares_llm.encoders.whisper import WhisperEncoder
from xares_llm.errors import EncoderError
from xares_llm.extract.decode import DecodedWindow
from xares_llm.extract.encode import Extractor, length_batches
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import resolve_tasks

FAULTY = Path(__file__).parent / "fixtures" / "encoders" / "faulty.py"
VOLATILE = {"created", "writer"}


def part_contents(part: Path) -> dict:
    group = zarr.open_group(part, mode="r")
    attrs = {k: v for k, v in group.attrs.asdict().items() if k not in VOLATILE}
    # soundfile's message names the BytesIO's address, which differs from run to run
    attrs["dropped"] = [{**d, "detail": re.sub(r" at 0x[0-9a-f]+", "", d.get("detail", ""))} for d in attrs["dropped"]]
    return {"attrs": attrs, **{name: group[name][:] for name in ("frames", "offsets", "keys", "meta", "n_samples")}}


def assert_same_parts(a: Path, b: Path, frames: bool = True) -> None:
    """The same parts with the same clips, records and (unless not `frames`) the same frames."""
    parts_a = sorted(p.relative_to(a) for p in a.rglob("part-*.zarr"))
    assert parts_a and parts_a == sorted(p.relative_to(b) for p in b.rglob("part-*.zarr"))
    for name in parts_a:
        one, other = part_contents(a / name), part_contents(b / name)
        if not frames:
            one["attrs"].pop("n_frames"), other["attrs"].pop("n_frames")
        assert one["attrs"] == other["attrs"], name
        for array in ("frames", "offsets", "keys", "meta", "n_samples")[0 if frames else 2 :]:
            np.testing.assert_array_equal(one[array], other[array], err_msg=f"{name} {array}")


@pytest.mark.parametrize("workers", [0, 1])
def test_small_windows_store_the_same_parts_as_whole_shards(demo_store, tmp_path, workers):
    """3 clips or 2 s of audio per window: each demo shard crosses several windows (and, with a
    decode worker process, several queue hand-overs), yet every part is the same."""
    cache = tmp_path / "cache"
    report = extract(
        "mel",
        resolve_tasks("demo"),
        cache,
        demo_store.data_root,
        dtype="float32",
        decode_workers=workers,
        window_seconds=2.0,
        window_clips=3,
    )
    assert report.clips == demo_store.report.clips and not report.not_complete
    assert_same_parts(demo_store.cache_root / "features", cache / "features")
    assert not list(cache.rglob("*.tmp-*")) and not list(cache.rglob("*.lock"))


def faulty_shard(path: Path) -> None:
    """Good clips with decode drops and encoder drops spread over the shard."""
    bad = {"label": "dog"}

    def marked(first: float, seed: int) -> bytes:
        audio = tone(440.0, 0.4, np.random.default_rng(seed))
        audio[0] = first
        return flac(audio)

    good = clips(6)
    samples = [*good[:2], ("nan", {"flac": marked(0.5, 1), "json": json.dumps(bad).encode()}), good[2]]
    samples += [("no_json", {"flac": good[0][1]["flac"]}), good[3], ("oom", {"flac": marked(0.125, 3), "json": b"{}"})]
    samples += [("oom2", {"flac": marked(0.125, 4), "json": json.dumps(bad).encode()}), *good[4:]]
    samples += [("undecodable", {"flac": b"fLaC not really", "json": json.dumps(bad).encode()})]
    write_shard(path, samples)


def test_dropped_records_keep_their_whole_shard_order_across_windows(tmp_path):
    shard = "faults/test/faults_0.tar"
    faulty_shard(tmp_path / "data" / shard)
    task = local_task("faults", [shard], [shard])
    for name, clips_per_window in (("whole", 10_000), ("windows", 2)):
        torch.manual_seed(0)  # the faulty encoder's weights are random: the same ones for both runs
        extract(
            str(FAULTY),
            [task],
            tmp_path / name,
            tmp_path / "data",
            splits=["test"],
            max_dropped=1.0,
            window_clips=clips_per_window,
        )
    # the faulty encoder returns no mask, so its frame counts depend on the batch's padding (what
    # `xares check`'s batch consistency row flags): only the clips and records are compared
    assert_same_parts(tmp_path / "whole", tmp_path / "windows", frames=False)
    record = read_part_record(next((tmp_path / "windows").rglob(part_name(shard))))
    reasons = [(d["key"], d["reason"]) for d in record.dropped]
    assert reasons == [
        ("no_json", "no json"),
        ("oom", "no label"),
        ("undecodable", "undecodable"),
        ("nan", "nonfinite"),
        ("oom2", "encoder failure"),
    ]
    assert record.n_clips == 6 and record.status == "complete"


def test_a_corrupt_gzip_found_at_the_end_drops_the_windows_already_written(tmp_path):
    """The gzip CRC is checked after the last byte: earlier windows were appended already, and
    are dropped with the rest, exactly as a whole-shard run drops them."""
    shard = "crc/test/crc_0.tar.gz"
    packed = bytearray(gzip.compress(tar_bytes(clips(5)), mtime=0))
    packed[-7] ^= 0x01  # inside the CRC32 trailer
    (tmp_path / "data" / shard).parent.mkdir(parents=True)
    (tmp_path / "data" / shard).write_bytes(bytes(packed))
    task = local_task("crc", [shard], [shard])
    for name, clips_per_window in (("whole", 10_000), ("windows", 1)):
        report = extract(
            "mel", [task], tmp_path / name, tmp_path / "data", splits=["test"], window_clips=clips_per_window
        )
        assert [p.status for p in report.not_complete] == ["partial"]
    assert_same_parts(tmp_path / "whole", tmp_path / "windows")
    record = read_part_record(next((tmp_path / "windows").rglob(part_name(shard))))
    assert record.n_clips == 0 and sorted(d["key"] for d in record.dropped) == [f"clip_{i:03d}" for i in range(5)]
    assert [d["detail"] for d in record.dropped] == ["cut by the damage", *["read from corrupt bytes"] * 4]
    assert not list((tmp_path / "windows").rglob("*.tmp-*"))


def test_an_encoder_bug_in_a_later_window_leaves_no_temp_and_no_lock(tmp_path):
    shard = "faults/test/faults_0.tar"
    bug = tone(440.0, 0.4, np.random.default_rng(9))
    bug[0] = 0.75  # the faulty encoder's marked bug clip
    write_shard(tmp_path / "data" / shard, [*clips(4), ("bug", {"flac": flac(bug), "json": b'{"label": "dog"}'})])
    task = local_task("faults", [shard], [shard])
    with pytest.raises(EncoderError, match="AssertionError"):
        extract(str(FAULTY), [task], tmp_path / "cache", tmp_path / "data", splits=["test"], window_clips=2)
    cache = tmp_path / "cache"
    assert not list(cache.rglob("*.tmp-*")) and not list(cache.rglob("*.lock"))
    assert not list(cache.rglob("part-*.zarr"))


def test_part_writer_appends_whole_shards_identical_to_a_one_shot_write(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "CHUNK_BYTES", 64)  # 4 rows of 4 float32 a chunk, 256 rows a shard
    rng = np.random.default_rng(0)
    clips_frames = [rng.standard_normal((int(n), 4)).astype(np.float32) for n in rng.integers(0, 90, 40)]
    writer = PartWriter(tmp_path / "part-a.zarr", 4, "float32")
    for i, frames in enumerate(clips_frames):
        writer.add(f"k{i}", frames, "{}", 16 * len(frames))
        assert writer._buffer is None or writer._buffer.shape == (4 * CHUNKS_PER_SHARD, 4)  # one shard held
    writer.close(SourceInfo("a.tar", 1, "00", 0), [])
    frames = np.concatenate(clips_frames)
    assert len(frames) > 3 * 4 * CHUNKS_PER_SHARD  # several shards and a partial last one
    one_shot = zarr.open_group(tmp_path / "one-shot.zarr", mode="w").create_array(
        "frames",
        shape=frames.shape,
        dtype="float32",
        chunks=(4, 4),
        shards=(256, 4),
        compressors=_codecs(),
        config=ARRAY_CONFIG,
    )
    one_shot[:] = frames
    streamed_dir, one_shot_dir = tmp_path / "part-a.zarr" / "frames", tmp_path / "one-shot.zarr" / "frames"
    files = sorted(p.relative_to(streamed_dir) for p in streamed_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(one_shot_dir) for p in one_shot_dir.rglob("*") if p.is_file())
    for name in files:
        assert (streamed_dir / name).read_bytes() == (one_shot_dir / name).read_bytes(), name
    record = read_part_record(tmp_path / "part-a.zarr")
    assert record.n_clips == 40 and record.n_frames == len(frames)


def test_padding_encoders_fill_a_batch_by_padded_seconds():
    one_second = [16_000] * 100
    assert [len(b) for b in length_batches(one_second, 240.0)] == [100]  # padded to the longest: 1 s each
    padded = [len(b) for b in length_batches(one_second, 240.0, padded_samples=30 * 16_000)]
    assert max(padded) == 240 // 30 and sum(padded) == 100
    long_clips = [45 * 16_000, 16_000, 16_000]  # 45 s is two 30 s windows
    assert list(length_batches(long_clips, 90.0, padded_samples=30 * 16_000)) == [[0, 1], [2]]


class PaddingEncoder(nn.Module):
    """Pads every window to 30 s (as Whisper does) and records its batch sizes."""

    output_dim, max_input_seconds, pads_to_max = 2, 30.0, True

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def forward(self, audio, audio_attention_mask=None):
        self.batches.append(audio.shape[0])
        return torch.zeros(audio.shape[0], audio.shape[1] // 320, 2), None


def encoder_info(dim: int) -> EncoderInfo:
    return EncoderInfo("x-0", "x", "X", {}, "0" * 64, dim, 50.0, 16_000, "float32", "fp32", {}, "0")


def test_a_pads_to_max_encoder_gets_at_most_batch_over_max_input_clips():
    encoder = PaddingEncoder()
    window = DecodedWindow(SourceInfo("x.tar", 1, "00", 0), [f"k{i}" for i in range(20)])
    window.audio, window.meta = [np.zeros(16_000, np.float32)] * 20, ["{}"] * 20
    buffer = Extractor(encoder, encoder_info(2), "cpu", 240.0).encode(window, None)
    assert len(buffer.keys) == 20 and encoder.batches == [8, 8, 4]
    assert WhisperEncoder.pads_to_max is True


def test_pads_to_max_without_an_input_length_is_refused():
    encoder = PaddingEncoder()
    encoder.max_input_seconds = None
    with pytest.raises(EncoderError, match=r"declares pads_to_max but max_input_seconds is None"):
        Extractor(encoder, encoder_info(2), "cpu", 240.0)
