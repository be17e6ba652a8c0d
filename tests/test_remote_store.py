"""Reading a feature store from an fsspec URL (file://, memory://): the same data and loss as the local
store, a second read from the local mirror only, and a tampered remote refused as a local store is."""

from __future__ import annotations

import json
import pickle
import shutil
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit, list_encoders, read_encoder_info
from xares_llm.cache import reader as store_reader
from xares_llm.cache import remote as store_remote
from xares_llm.cache.chunks import CHUNK_CACHE_BYTES, ChunkCache
from xares_llm.cache.errors import CacheError, StoreFileError
from xares_llm.cache.remote import remote_store
from xares_llm.cli.main import app
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.runs import read_run
from xares_llm.lalm.train import train
from xares_llm.probe.embeddings import cache_folder
from xares_llm.scoring.score import SCORES_JSON
from xares_llm.tasks.schema import load_mixture

DATASET, SPLIT = "demo_pitch", "train"
STEPS = 4


def recipe():
    return load_recipe("demo", {"steps": STEPS, "checkpoint_every": STEPS, "batch_size": 8})


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def to_memory(root: Path) -> str:
    """Copy the cache at `root` into fsspec's in-memory filesystem; its URL."""
    name, fs = f"xares-{uuid.uuid4().hex[:8]}", fsspec.filesystem("memory")
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fs.pipe_file(f"/{name}/{path.relative_to(root).as_posix()}", path.read_bytes())
    return f"memory://{name}"


def drop_memory(url: str) -> None:
    fs, path = fsspec.filesystem("memory"), url.removeprefix("memory:/")
    if fs.exists(path):
        fs.rm(path, recursive=True)


def fresh_chunk_cache(monkeypatch) -> None:
    """Decoded chunks forgotten, so the next read goes to the (mirrored) files."""
    monkeypatch.setattr(store_reader, "CHUNK_CACHE", ChunkCache(CHUNK_CACHE_BYTES))


def fresh_process(monkeypatch) -> None:
    """What a new process knows about URL stores: nothing listed yet (the mirror on disk stays)."""
    monkeypatch.setattr(store_remote, "_STORES", {})


def first_part(root: Path, encoder_id: str) -> Path:
    return sorted((root / "features" / encoder_id / DATASET / SPLIT).glob("part-*.zarr"))[0]


def without_timings(value: object) -> object:
    """The results without what depends on the run rather than the store: timings, and whether pooled
    embeddings were already cached (an earlier test may have probed the shared demo store)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in ("wall_seconds", "embedding_cache")}
    return value


def frame_chunks(part: Path) -> list[Path]:
    return sorted(p for p in (part / "frames" / "c").rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def mirror(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(store_remote.REMOTE_CACHE_ENV, str(tmp_path / "mirror"))
    return tmp_path / "mirror"


@pytest.fixture
def memory_url(demo_store):
    url = to_memory(demo_store.cache_root)
    yield url
    drop_memory(url)


@pytest.fixture
def file_copy(demo_store, tmp_path) -> Path:
    """A copy of the demo cache, as a teammate's store at a file:// URL that a test may damage."""
    shutil.copytree(demo_store.cache_root, tmp_path / "remote")
    return tmp_path / "remote"


def test_training_from_a_url_reaches_the_local_loss(demo_store, memory_url, file_copy, tmp_path):
    encoder_id, mix = demo_store.report.encoder_id, load_mixture("demo")
    local = train(tmp_path / "local", recipe(), mix, encoder_id, demo_store.cache_root)
    for name, url in (("file", f"file://{file_copy}"), ("memory", memory_url)):
        result = train(tmp_path / name, recipe(), mix, encoder_id, url)
        assert result.final_loss == pytest.approx(local.final_loss, abs=1e-6), name
        assert losses(tmp_path / name) == pytest.approx(losses(tmp_path / "local"), abs=1e-6), name
        assert read_run(tmp_path / name).cache_root == url  # eval and score find the store again
        assert remote_store(url).fetches > 0


def test_a_second_read_comes_from_the_mirror(demo_store, memory_url, monkeypatch):
    encoder_id = demo_store.report.encoder_id
    local = FeatureSplit(demo_store.cache_root, encoder_id, DATASET, SPLIT)
    store = FeatureSplit(memory_url, encoder_id, DATASET, SPLIT)
    assert len(store) == len(local) > 0
    fresh_chunk_cache(monkeypatch)
    first = [store[i] for i in range(len(store))]
    fetched = remote_store(memory_url).fetches
    drop_memory(memory_url)  # the remote is gone: anything read now comes from local disk
    fresh_chunk_cache(monkeypatch)
    again = FeatureSplit(memory_url, encoder_id, DATASET, SPLIT)  # reopened in this process: not listed again
    copied = pickle.loads(pickle.dumps(store))  # what a DataLoader worker gets
    for i in range(len(local)):
        expected = local[i]
        for clip in (first[i], store[i], again[i], copied[i]):
            assert clip.key == expected.key and clip.meta == expected.meta and clip.n_samples == expected.n_samples
            assert clip.frames.dtype == expected.frames.dtype and np.array_equal(clip.frames, expected.frames)
    assert remote_store(memory_url).fetches == fetched


class Frames(torch.utils.data.Dataset):
    def __init__(self, store: FeatureSplit):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.store.frames(index)


def test_workers_fetch_into_one_mirror_without_corrupting_it(demo_store, memory_url, monkeypatch):
    """Two workers read neighbouring clips (the same chunks) from a fresh mirror, then read it again
    with the remote gone: every frame equals the local store's."""
    encoder_id = demo_store.report.encoder_id
    local = FeatureSplit(demo_store.cache_root, encoder_id, DATASET, SPLIT)
    store = FeatureSplit(memory_url, encoder_id, DATASET, SPLIT)
    fresh_chunk_cache(monkeypatch)
    expected = [local.frames(i) for i in range(len(local))]
    loader = torch.utils.data.DataLoader(Frames(store), batch_size=None, num_workers=2)
    assert all(np.array_equal(got.numpy(), want) for got, want in zip(loader, expected, strict=True))
    drop_memory(memory_url)
    assert all(np.array_equal(got.numpy(), want) for got, want in zip(loader, expected, strict=True))
    leftovers = [p for p in remote_store(memory_url).root.rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_a_zarr_v2_remote_part_is_refused_naming_it(demo_store, file_copy):
    part = first_part(file_copy, demo_store.report.encoder_id)
    (part / "zarr.json").unlink()
    (part / ".zgroup").write_text('{"zarr_format": 2}')
    with pytest.raises(StoreFileError, match=r"Zarr v2 \(\.zgroup\)") as caught:
        FeatureSplit(f"file://{file_copy}", demo_store.report.encoder_id, DATASET, SPLIT)
    assert part.name in str(caught.value)


def test_a_remote_part_missing_a_chunk_is_refused_naming_it(demo_store, file_copy):
    part = first_part(file_copy, demo_store.report.encoder_id)
    chunk = frame_chunks(part)[-1]
    chunk.unlink()
    with pytest.raises(StoreFileError, match="frames: 1 chunk files missing") as caught:
        FeatureSplit(f"file://{file_copy}", demo_store.report.encoder_id, DATASET, SPLIT)
    assert part.name in str(caught.value)


def test_a_damaged_remote_chunk_fails_its_checksum_naming_the_part(demo_store, file_copy, monkeypatch):
    encoder_id = demo_store.report.encoder_id
    part = first_part(file_copy, encoder_id)
    chunk = frame_chunks(part)[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the crc32c can tell
    chunk.write_bytes(bytes(data))
    store = FeatureSplit(f"file://{file_copy}", encoder_id, DATASET, SPLIT)
    fresh_chunk_cache(monkeypatch)
    with pytest.raises(StoreFileError, match="frames: cannot read") as caught:
        store.frames(0)
    assert part.name in str(caught.value)


def test_a_chunk_changed_after_listing_is_not_kept(demo_store, file_copy, monkeypatch):
    encoder_id = demo_store.report.encoder_id
    store = FeatureSplit(f"file://{file_copy}", encoder_id, DATASET, SPLIT)
    chunk = frame_chunks(first_part(file_copy, encoder_id))[0]
    with chunk.open("ab") as f:
        f.write(b"appended after the listing")
    fresh_chunk_cache(monkeypatch)
    with pytest.raises(CacheError, match="the listing says"):
        store.frames(0)
    mirrored = store.parts[0] / chunk.relative_to(first_part(file_copy, encoder_id))
    assert not mirrored.exists() and not list(mirrored.parent.glob("*.tmp-*"))


def test_a_symlink_in_the_remote_is_not_followed(demo_store, file_copy, tmp_path):
    part = first_part(file_copy, demo_store.report.encoder_id)
    (tmp_path / "secret").write_text("not part of any store")
    (part / "offsets" / "c" / "extra").symlink_to(tmp_path / "secret")
    with pytest.raises(CacheError, match="a link or special file; it is not followed"):
        FeatureSplit(f"file://{file_copy}", demo_store.report.encoder_id, DATASET, SPLIT)
    assert not list(remote_store(f"file://{file_copy}").root.rglob("extra"))


def test_a_changed_remote_part_is_fetched_again(demo_store, file_copy, monkeypatch):
    encoder_id, url = demo_store.report.encoder_id, f"file://{file_copy}"
    assert FeatureSplit(url, encoder_id, DATASET, SPLIT).parts
    part = first_part(file_copy, encoder_id)
    group = json.loads((part / "zarr.json").read_text())
    group["attributes"]["created"] = "rewritten"
    (part / "zarr.json").write_text(json.dumps(group))
    shutil.rmtree(sorted((file_copy / "features" / encoder_id / DATASET / SPLIT).glob("part-*.zarr"))[-1])
    fresh_process(monkeypatch)
    reopened = FeatureSplit(url, encoder_id, DATASET, SPLIT)
    assert [p.name for p in reopened.parts] == [part.name]  # the removed part left the mirror too
    assert json.loads((reopened.parts[0] / "zarr.json").read_text())["attributes"]["created"] == "rewritten"


def test_encoders_are_listed_from_the_url(demo_store, memory_url):
    encoder_id = demo_store.report.encoder_id
    listed = [i.encoder_id for i in list_encoders(memory_url)]
    assert encoder_id in listed and listed == [i.encoder_id for i in list_encoders(demo_store.cache_root)]
    assert read_encoder_info(memory_url, encoder_id) == read_encoder_info(demo_store.cache_root, encoder_id)
    assert read_encoder_info(memory_url, "mel-000000000000") is None


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("extract", ["mel", "--tasks", "demo"]),
        ("cache push", ["mel-000000000000", "memory://elsewhere"]),
        ("cache ls", []),
    ],
)
def test_commands_that_write_the_cache_refuse_a_url(command, args):
    result = CliRunner().invoke(app, [*command.split(), *args, "--cache", "memory://x"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert line.startswith("error: --cache memory://x: a URL cache is read-only") and f"`xares {command}`" in line


def test_eval_and_score_from_a_url_match_the_local_store(demo_store, memory_url, tmp_path):
    encoder_id, mix = demo_store.report.encoder_id, load_mixture("demo")
    runner = CliRunner()
    for name, cache in (("local", str(demo_store.cache_root)), ("url", memory_url)):
        args = ["--mixture", "demo", "--recipe", "demo", "--steps", f"{STEPS}", "--set", "batch_size=8", "--device=cpu"]
        trained = runner.invoke(
            app, ["train", encoder_id[:8], *args, "--run-dir", str(tmp_path / name), "--cache", cache]
        )
        assert trained.exit_code == 0, trained.output
        evaluated = runner.invoke(app, ["eval", str(tmp_path / name), "--device", "cpu"])  # the run names its cache
        assert evaluated.exit_code == 0, evaluated.output
    assert mix.name == "demo"
    for task in mix.evaluate:
        url_lines = (tmp_path / "url" / "predictions" / f"{task}.jsonl").read_text()
        assert url_lines == (tmp_path / "local" / "predictions" / f"{task}.jsonl").read_text()
    scores = json.loads((tmp_path / "url" / SCORES_JSON).read_text())
    rescored = runner.invoke(app, ["score", str(tmp_path / "url"), "--cache", memory_url])
    assert rescored.exit_code == 0, rescored.output
    assert json.loads((tmp_path / "url" / SCORES_JSON).read_text())["tasks"] == scores["tasks"]


def test_probe_from_a_url_scores_as_the_local_store_and_writes_only_the_mirror(demo_store, memory_url, tmp_path):
    encoder_id, scores = demo_store.report.encoder_id, {}
    memory = fsspec.filesystem("memory")
    before = {p for p in memory.find(memory_url.removeprefix("memory:/")) if ".probe" in p}  # copied with the store
    for name, cache in (("local", str(demo_store.cache_root)), ("url", memory_url)):
        args = ["probe", encoder_id, "--tasks", "demo_pitch", "--heads", "linear", "--device", "cpu"]
        result = CliRunner().invoke(app, [*args, "--cache", cache, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        scores[name] = json.loads((tmp_path / name / "probe_scores.json").read_text())["tasks"]
    assert without_timings(scores["url"]) == without_timings(scores["local"])
    assert list(cache_folder(memory_url, encoder_id).glob("demo_pitch@train-*.npy"))  # pooled beside the mirror
    assert {p for p in memory.find(memory_url.removeprefix("memory:/")) if ".probe" in p} == before  # nothing written
