"""Opening a store reads each part's small arrays directly: the same values zarr reads, the same errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xares_llm.cache.chunks import open_part, read_whole
from xares_llm.cache.errors import StoreFileError
from xares_llm.cache.format import SourceInfo
from xares_llm.cache.index_read import read_index_array
from xares_llm.cache.reader import INDEX_ARRAYS, FeatureSplit
from xares_llm.cache.writer import PartBuffer, write_part


def part(tmp_path, n_clips: int, dtype: str = "float16", name: str = "part-x.zarr"):
    buffer = PartBuffer(dim=4, dtype=dtype)
    rng = np.random.default_rng(n_clips)
    for i in range(n_clips):
        meta = json.dumps({"label": f"clip {i} ü 中", "duration_s": i / 10})
        buffer.add(f"key-{i}", rng.normal(size=(i % 5 + 1, 4)), meta, 1600 * (i + 1))
    path = tmp_path / "features" / "enc" / "ds" / "train" / name
    write_part(path, buffer, SourceInfo(f"{name}.tar", 1, "00", 0))
    return path


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("n_clips", [0, 1, 37])
def test_direct_read_equals_zarr(tmp_path, dtype, n_clips):
    path = part(tmp_path, n_clips, dtype)
    group = open_part(path)
    for name in INDEX_ARRAYS:
        direct, through_zarr = read_index_array(path, name), read_whole(path, group, name)
        assert direct.dtype == through_zarr.dtype and direct.shape == through_zarr.shape
        assert direct.tolist() == through_zarr.tolist()


def test_store_reads_the_same_clips_either_way(tmp_path, monkeypatch):
    for i, n in enumerate((3, 0, 11)):
        part(tmp_path, n, name=f"part-{i}.zarr")
    direct = list(FeatureSplit(tmp_path, "enc", "ds", "train"))
    monkeypatch.setattr("xares_llm.cache.reader.read_index_array", lambda part, name: None)  # zarr for all
    through_zarr = list(FeatureSplit(tmp_path, "enc", "ds", "train"))
    assert len(direct) == 14
    assert [(c.key, c.meta, c.n_samples) for c in direct] == [(c.key, c.meta, c.n_samples) for c in through_zarr]
    for a, b in zip(direct, through_zarr, strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)


def test_a_flipped_byte_names_the_part_and_array(tmp_path):
    path = part(tmp_path, 5)
    chunk = path / "meta" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[3] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreFileError, match=r"meta: cannot read.*checksum") as raised:
        FeatureSplit(tmp_path, "enc", "ds", "train")
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("array", ["keys", "frames"])
def test_a_missing_chunk_file_names_the_part_and_array(tmp_path, array):
    path = part(tmp_path, 5)
    (path / array / "c" / "0").unlink() if array == "keys" else (path / array / "c" / "0" / "0").unlink()
    with pytest.raises(StoreFileError, match=f"{array}: 1 chunk files missing"):
        FeatureSplit(tmp_path, "enc", "ds", "train")


def test_another_layout_is_left_to_zarr(tmp_path):
    path = part(tmp_path, 4)
    meta_file = path / "offsets" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["codecs"] = meta["codecs"][:1] + meta["codecs"][2:]  # no zstd: not the writer's layout
    meta_file.write_text(json.dumps(meta))
    assert read_index_array(path, "offsets") is None
    assert read_index_array(path, "keys") is not None


def test_targets_count_the_dropped_clips_the_store_read_at_open(tmp_path):
    from xares_llm.cache.metadata import read_part_attrs
    from xares_llm.tasks.data import read_targets
    from xares_llm.tasks.schema import TaskConfig

    buffer = PartBuffer(dim=4, dtype="float16")
    buffer.add("kept", np.ones((2, 4)), json.dumps({"label": "dog"}), 3200)
    buffer.dropped.append({"key": "lost", "reason": "no_audio", "meta": json.dumps({"label": "cat"})})
    path = tmp_path / "features" / "enc" / "ds" / "train" / "part-0.zarr"
    write_part(path, buffer, SourceInfo("0.tar", 1, "00", 0))
    store = FeatureSplit(tmp_path, "enc", "ds", "train")
    assert store.part_attrs == [read_part_attrs(path)]
    task = TaskConfig.model_validate(
        {
            "name": "t",
            "track": "user",
            "dataset": {"name": "ds", "train": ["0.tar"], "test": ["0.tar"]},
            "labels": {"train": "label", "test": "label"},
            "prompt": "p",
            "metric": {"name": "accuracy"},
        }
    )
    split = read_targets(task, store, "train")
    assert split.targets == ["dog"] and split.counts.dropped == 1
    assert [(d.key, d.targets) for d in split.dropped] == [("lost", ["cat"])]


def test_iter_meta_is_every_clip_in_order(tmp_path):
    for i, n in enumerate((3, 0, 11, 1)):
        part(tmp_path, n, name=f"part-{i}.zarr")
    store = FeatureSplit(tmp_path, "enc", "ds", "train")
    assert list(store.iter_meta()) == [store.meta(i) for i in range(len(store))] and len(store) == 15
