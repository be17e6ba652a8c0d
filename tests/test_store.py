"""Feature store round trip: what extraction writes is what the encoder computes and the tar holds."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile

import numpy as np
import pytest
import torch
import zarr

from xares_llm.audio.decoding import decode_audio
from xares_llm.audio.demo_data import tone, write_tar
from xares_llm.cache import FeatureSplit, PartBuffer, SourceInfo, read_part_attrs, write_part
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import part_name
from xares_llm.encoders import load_encoder
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.encoders.encoding import encode_clips
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import load_task, resolve_tasks


def tar_samples(path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, _, ext = member.name.partition(".")
            samples.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return samples


def test_part_matches_tar_and_single_clip_encoder(demo_store):
    task = load_task("demo_melody")
    shard = task.dataset.shards("test")[0]
    part = demo_store.cache_root / "features" / demo_store.report.encoder_id / "demo_melody" / "test" / part_name(shard)
    group = zarr.open_group(part, mode="r")
    assert set(group.array_keys()) == {"frames", "offsets", "keys", "meta", "n_samples"}
    assert group["offsets"][-1] == group["frames"].shape[0]
    samples = tar_samples(demo_store.data_root / shard)
    assert list(group["keys"][:]) == list(samples)
    encoder = load_encoder("mel").module.eval()
    offsets = group["offsets"][:]
    for i, key in enumerate(group["keys"][:]):
        audio = decode_audio(samples[key]["flac"])
        assert group["n_samples"][i] == len(audio)
        assert json.loads(str(group["meta"][i])) == json.loads(samples[key]["json"])
        (expected,) = encode_clips(encoder, [audio])
        stored = group["frames"][offsets[i] : offsets[i + 1]]
        np.testing.assert_array_equal(stored, expected.numpy())  # float32 store: exact


def test_float16_store_rounds_only(tmp_path, demo_store):
    tasks = [load_task("demo_pitch")]
    report = extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"])
    store16 = FeatureSplit(tmp_path, report.encoder_id, "demo_pitch", "test")
    store32 = FeatureSplit(demo_store.cache_root, demo_store.report.encoder_id, "demo_pitch", "test")
    assert report.encoder_id != demo_store.report.encoder_id  # dtype is part of the fingerprint
    assert len(store16) == len(store32) > 0
    for i in range(len(store16)):
        assert store16.frames(i).dtype == np.float16
        np.testing.assert_array_equal(store16.frames(i), store32.frames(i).astype(np.float16))


def test_rerun_is_a_noop(demo_store):
    before = {p: p.stat().st_mtime_ns for p in demo_store.cache_root.rglob("*") if p.is_file()}
    report = extract("mel", resolve_tasks("demo"), demo_store.cache_root, demo_store.data_root, dtype="float32")
    after = {p: p.stat().st_mtime_ns for p in demo_store.cache_root.rglob("*") if p.is_file()}
    assert report.written == [] and report.up_to_date == 16
    assert before == after


def test_changed_shard_is_reextracted(tmp_path, demo_store):
    data = tmp_path / "data"
    shutil.copytree(demo_store.data_root, data)
    tasks = [load_task("demo_count")]
    first = extract("mel", tasks, tmp_path / "cache", data, splits=["test"])
    shard = data / tasks[0].dataset.shards("test")[1]
    with tarfile.open(shard, "a") as tar:  # a new sample appended to the source shard
        info = tarfile.TarInfo("extra_clip.json")
        payload = b'{"count": 2}'
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    second = extract("mel", tasks, tmp_path / "cache", data, splits=["test"], max_dropped=0.2)
    assert second.up_to_date == 1 and len(second.written) == 1
    attrs = read_part_attrs(second.written[0])
    assert attrs.dropped == [{"key": "extra_clip", "reason": "no audio", "detail": "found json"}]
    assert first.encoder_id == second.encoder_id


def test_reader_random_access_and_iteration(demo_store):
    store = FeatureSplit(demo_store.cache_root, demo_store.report.encoder_id, "demo_events", "train")
    assert len(store) == 80 and len(store.parts) == 2
    clips = list(store)
    assert [c.key for c in clips] == [store.key(i) for i in range(len(store))]
    last = store[len(store) - 1]
    np.testing.assert_array_equal(last.frames, clips[-1].frames)
    np.testing.assert_array_equal(store.frames(5, 2, 7), clips[5].frames[2:7])
    assert store.frame_counts.tolist() == [len(c.frames) for c in clips]
    with pytest.raises(IndexError):
        store[len(store)]


def test_unfinished_part_is_invisible(tmp_path):
    buffer = PartBuffer(dim=4, dtype="float32")
    buffer.add("a", np.ones((3, 4)), "{}", 480)
    path = tmp_path / "features" / "enc" / "ds" / "train" / "part-x.zarr"
    write_part(path, buffer, SourceInfo("x.tar", 1, "00", 0))
    zarr.open_group(path, mode="r+").attrs["status"] = "writing"
    assert len(FeatureSplit(tmp_path, "enc", "ds", "train")) == 0


def test_fingerprint_changes_with_one_weight_and_one_kwarg(tmp_path):
    source = tmp_path / "tiny_encoder.py"
    source.write_text(
        "import torch\n"
        "class TinyEncoder(torch.nn.Module):\n"
        "    def __init__(self, dim=4):\n"
        "        super().__init__()\n"
        "        self.output_dim = dim\n"
        "        self.proj = torch.nn.Linear(1, dim)\n"
        "        torch.nn.init.ones_(self.proj.weight)\n"
        "        torch.nn.init.zeros_(self.proj.bias)\n"
        "    def forward(self, audio, mask=None):\n"
        "        return self.proj(audio.unsqueeze(-1)), mask\n"
    )
    base = prepare_encoder(str(source), None, "cpu", "float16")[1]
    assert prepare_encoder(str(source), None, "cpu", "float16")[1].encoder_id == base.encoder_id
    assert prepare_encoder(str(source), {"dim": 5}, "cpu", "float16")[1].encoder_id != base.encoder_id
    changed = "init.ones_(self.proj.weight)\n        self.proj.weight.data[0, 0] = 2.0"
    source.write_text(source.read_text().replace("init.ones_(self.proj.weight)", changed))
    assert prepare_encoder(str(source), None, "cpu", "float16")[1].encoder_id != base.encoder_id
    assert base.encoder_id.startswith("tiny-") and len(base.encoder_id.split("-")[-1]) == 12


def test_weight_change_alone_changes_fingerprint():
    from xares_llm.encoders.fingerprint import fingerprint

    loaded = load_encoder("mel")
    first = fingerprint(loaded, {}, "float16", "fp32")
    with torch.no_grad():
        loaded.module.filters[3, 5] += 1e-3
    assert fingerprint(loaded, {}, "float16", "fp32") != first


def test_parts_locked_by_a_live_process_are_left_to_it(tmp_path, demo_store):
    import multiprocessing
    import socket

    from lockers import hold

    tasks = [load_task("demo_count")]
    encoder_id = prepare_encoder("mel", None, "cpu", "float16")[1].encoder_id
    split = tmp_path / "features" / encoder_id / "demo_count" / "test"
    split.mkdir(parents=True)
    shards = tasks[0].dataset.shards("test")
    host = socket.gethostname()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold, args=(str(split / part_name(shards[0])), ready))  # a live flock
    holder.start()
    assert ready.wait(120)
    (split / (part_name(shards[0]) + ".tmp-" + f"{host}-1-abcd1234")).mkdir()  # a live writer's temp (pid 1)
    (split / (part_name(shards[1]) + ".lock")).write_text(f"{host}-1")  # pid 1 lives, but holds no flock
    (split / (part_name(shards[1]) + ".tmp-" + f"{host}-999999999-abcd1234")).mkdir()  # a killed run's temp
    (split / (part_name(shards[1]) + ".tmp-" + f"{host}-1-abcd5678")).mkdir()  # killed, its pid reused since
    try:
        report = extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"])
    finally:
        holder.kill()
        holder.join()
    assert report.elsewhere == 1 and [p.name for p in report.written] == [part_name(shards[1])]
    remaining = sorted(p.name for p in split.iterdir())
    assert remaining == sorted(
        [part_name(shards[0]) + ".lock", part_name(shards[0]) + f".tmp-{host}-1-abcd1234", part_name(shards[1])]
    )


def test_complete_parts_need_no_audio(tmp_path, demo_store):
    """Someone with a shared cache but not the audio: a rerun is up to date, not a download."""
    data = tmp_path / "data"
    shutil.copytree(demo_store.data_root, data)
    tasks = [load_task("esc50")]
    rng = np.random.default_rng(0)
    for shard in [*tasks[0].dataset.shards("train"), *tasks[0].dataset.shards("test")]:
        write_tar(data / shard, [(f"c{i}", tone(440.0, 0.5, rng), {"label": "dog", "text": "dog"}) for i in range(3)])
    first = extract("mel", tasks, tmp_path / "cache", data)
    assert len(first.written) == 5
    shutil.rmtree(data / "ESC-50")
    again = extract("mel", tasks, tmp_path / "cache", data)
    assert again.up_to_date == 5 and not again.written


def test_decode_worker_processes_write_the_same_parts(tmp_path, demo_store):
    tasks = [load_task("demo_events")]
    threads = extract("mel", tasks, tmp_path / "a", demo_store.data_root, splits=["test"], dtype="float32")
    processes = extract(
        "mel", tasks, tmp_path / "b", demo_store.data_root, splits=["test"], dtype="float32", decode_workers=2
    )
    assert threads.encoder_id == processes.encoder_id and len(processes.written) == 2
    for root in (tmp_path / "a", tmp_path / "b"):
        assert len(FeatureSplit(root, threads.encoder_id, "demo_events", "test")) == 16
    a = FeatureSplit(tmp_path / "a", threads.encoder_id, "demo_events", "test")
    b = FeatureSplit(tmp_path / "b", threads.encoder_id, "demo_events", "test")
    for i in range(len(a)):
        assert a.key(i) == b.key(i)
        np.testing.assert_array_equal(a.frames(i), b.frames(i))


@pytest.fixture
def damaged_copy(demo_store, tmp_path):
    """A copy of the demo store and the first part of demo_pitch/test, to damage."""
    root = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, root)
    store = FeatureSplit(root, demo_store.report.encoder_id, "demo_pitch", "test")
    return root, demo_store.report.encoder_id, store.parts[0]


def test_a_deleted_frames_file_is_an_error_naming_the_part_not_zeros(damaged_copy):
    root, encoder_id, part = damaged_copy
    opened = FeatureSplit(root, encoder_id, "demo_pitch", "test")  # opened before the damage (a long run)
    (part / "frames" / "c" / "0" / "0").unlink()
    with pytest.raises(CacheError, match=re.escape(f"{part}: frames: chunk file c/0/0 is missing")):
        opened[0]
    with pytest.raises(CacheError, match=re.escape(f"{part}: frames: 1 chunk files missing")):
        FeatureSplit(root, encoder_id, "demo_pitch", "test")[0]


def test_a_flipped_byte_in_frames_is_an_error_naming_the_part(damaged_copy):
    root, encoder_id, part = damaged_copy
    frames = part / "frames" / "c" / "0" / "0"
    data = bytearray(frames.read_bytes())
    data[len(data) // 2] ^= 0xFF
    frames.write_bytes(data)
    store = FeatureSplit(root, encoder_id, "demo_pitch", "test")
    with pytest.raises(CacheError, match=re.escape(f"{part}: frames: cannot read") + ".*checksum") as caught:
        store.frames(0)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("array", ["offsets", "keys", "meta", "n_samples"])
def test_a_deleted_or_flipped_index_array_fails_at_open(damaged_copy, array):
    root, encoder_id, part = damaged_copy
    chunk = part / array / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(data)
    with pytest.raises(CacheError, match=re.escape(f"{part}: {array}: cannot read")):
        FeatureSplit(root, encoder_id, "demo_pitch", "test")
    chunk.unlink()
    with pytest.raises(CacheError, match=re.escape(f"{part}: {array}: 1 chunk files missing")):
        FeatureSplit(root, encoder_id, "demo_pitch", "test")


def test_one_chunk_cache_bounds_every_open_split(demo_store, monkeypatch):
    from xares_llm.cache import reader
    from xares_llm.cache.chunks import ChunkCache

    cache = ChunkCache(limit_bytes=64 << 10)
    monkeypatch.setattr(reader, "CHUNK_CACHE", cache)
    splits = [FeatureSplit(demo_store.cache_root, demo_store.report.encoder_id, d, "train")
              for d in ("demo_pitch", "demo_count", "demo_events")]  # fmt: skip
    for split in splits:
        for index in range(len(split)):
            assert split.frames(index).shape[0] == split.frame_counts[index]
    assert 0 < cache.bytes <= 64 << 10 or len(cache._chunks) == 1
