"""A part whose checksums hold but whose metadata does not add up is refused by every reader, naming it,
before any work proportional to what it claims; a pull checks the store it promises."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import zarr
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit
from xares_llm.cache.errors import CacheError, StoreFileError
from xares_llm.cache.format import features_root
from xares_llm.cache.remote import REMOTE_CACHE_ENV
from xares_llm.cache.transfer import STAGING_PREFIX, pull
from xares_llm.cache.verify import verify_part
from xares_llm.cli.main import app

DATASET, SPLIT = "demo_pitch", "train"
HUGE = 1638 * 64 * 10**7  # frames a crafted zarr.json claims: some 2e7 shards of 52416 rows


@pytest.fixture
def copy(demo_store, tmp_path) -> tuple[Path, str, Path]:
    """A damageable copy of the demo cache, its encoder-id and the first part of the train split."""
    root = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, root)
    encoder_id = demo_store.report.encoder_id
    part = sorted((features_root(root) / encoder_id / DATASET / SPLIT).glob("part-*.zarr"))[0]
    return root, encoder_id, part


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def refused_everywhere(root: Path, encoder_id: str, part: Path, match: str, tmp_path, monkeypatch) -> None:
    """FeatureSplit on the folder and through a file:// URL, verify, `xares train` and `probe`: one line naming it."""
    with pytest.raises(StoreFileError, match=match) as local:
        FeatureSplit(root, encoder_id, DATASET, SPLIT)
    assert str(part) in str(local.value)
    monkeypatch.setenv(REMOTE_CACHE_ENV, str(tmp_path / "mirror"))
    with pytest.raises(StoreFileError, match=match) as remote:
        FeatureSplit(f"file://{root}", encoder_id, DATASET, SPLIT)
    assert part.name in str(remote.value)
    assert not verify_part(part).ok
    args = ["train", encoder_id, "--mixture", "demo", "--recipe", "demo", "--steps", "1", "--cache", str(root)]
    result = CliRunner().invoke(app, [*args, "--run-dir", str(tmp_path / "run")])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(errors) == 1 and part.name in " ".join(result.output.split()), result.output
    args = ["probe", encoder_id, "--tasks", DATASET, "--heads", "linear", "--device", "cpu", "--cache", str(root)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "probe")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert part.name in " ".join(result.output.split()), result.output


def test_a_frame_count_edited_in_zarr_json_is_refused_by_every_reader(copy, tmp_path, monkeypatch):
    root, encoder_id, part = copy
    edit_json(part / "frames" / "zarr.json", lambda meta: meta["shape"].__setitem__(0, 100))
    refused_everywhere(root, encoder_id, part, r"frames: shape\[0\] is 100, attributes say", tmp_path, monkeypatch)


def test_offsets_swapped_through_zarr_keep_their_checksums_and_are_refused(copy, tmp_path, monkeypatch):
    root, encoder_id, part = copy
    offsets = zarr.open_array(part / "offsets", mode="r+")
    values = offsets[:]
    values[[1, 2]] = values[[2, 1]]
    offsets[:] = values  # a new chunk, crc32c and all
    refused_everywhere(root, encoder_id, part, "offsets are not a 0-based non-decreasing index", tmp_path, monkeypatch)


def test_offsets_claiming_a_trillion_entries_are_refused_before_allocating(copy):
    root, encoder_id, part = copy
    edit_json(part / "offsets" / "zarr.json", lambda meta: meta["shape"].__setitem__(0, 10**12))
    with pytest.raises(StoreFileError, match=r"offsets: shape\[0\] is 1000000000000"):
        FeatureSplit(root, encoder_id, DATASET, SPLIT)
    n_clips = json.loads((part / "zarr.json").read_text())["attributes"]["n_clips"]
    for name in ("offsets", "keys", "meta", "n_samples"):  # every count agrees, the chunk is a terabyte
        rows = 10**12 + (name == "offsets")
        edit_json(part / name / "zarr.json", lambda meta, rows=rows: meta.update(shape=[rows], chunk_grid=grid([rows])))
    edit_json(part / "zarr.json", lambda meta: meta["attributes"].update(n_clips=10**12))
    with pytest.raises(StoreFileError, match=r"offsets: chunks of \[1000000000001\] items, more than"):
        FeatureSplit(root, encoder_id, DATASET, SPLIT)
    assert n_clips < 10**6


def grid(chunks: list[int]) -> dict:
    return {"name": "regular", "configuration": {"chunk_shape": chunks}}


def test_a_chunk_grid_the_shards_do_not_divide_is_one_line(copy):
    root, encoder_id, part = copy

    def inner(meta):
        meta["codecs"][0]["configuration"]["chunk_shape"][0] += 1

    edit_json(part / "frames" / "zarr.json", inner)
    with pytest.raises(StoreFileError, match=r"frames: sharding chunks .* do not divide its chunk grid"):
        FeatureSplit(root, encoder_id, DATASET, SPLIT)
    assert "do not divide" in verify_part(part).problems[0]
    result = CliRunner().invoke(app, ["cache", "ls", "--cache", str(root)])
    assert "Traceback" not in result.output and "ValueError" not in result.output


def claim_huge(part: Path) -> None:
    """frames and the attributes agree on billions of frames; the part holds one shard file."""
    edit_json(part / "frames" / "zarr.json", lambda meta: meta["shape"].__setitem__(0, HUGE))
    edit_json(part / "zarr.json", lambda meta: meta["attributes"].update(n_frames=HUGE))


def test_a_claimed_huge_chunk_count_costs_a_listing_not_a_loop(copy, tmp_path, monkeypatch):
    root, encoder_id, part = copy
    claim_huge(part)
    with pytest.raises(StoreFileError, match=r"frames: \d+ chunk files missing \(c/1/0, c/2/0, c/3/0\)"):
        FeatureSplit(root, encoder_id, DATASET, SPLIT)
    monkeypatch.setenv(REMOTE_CACHE_ENV, str(tmp_path / "mirror"))
    with pytest.raises(StoreFileError, match=r"frames: \d+ chunk files missing"):
        FeatureSplit(f"file://{root}", encoder_id, DATASET, SPLIT)
    with pytest.raises(CacheError, match=r"pulled store is damaged .* chunk files missing"):
        pull(tmp_path / "mine", encoder_id, str(root))


def test_a_killed_pulls_staging_dir_is_removed_by_the_next_pull(demo_store, tmp_path):
    encoder_id = demo_store.report.encoder_id
    base = features_root(tmp_path / "mine")
    left = base / f"{STAGING_PREFIX}{encoder_id}-dead"
    (left / "features").mkdir(parents=True)
    (left / "features" / "big").write_bytes(b"x" * 1000)
    (base / f"{left.name}.lock").write_text(json.dumps({"host": "x", "pid": 1, "start": 1, "taken": 0}))
    os.utime(base / f"{left.name}.lock", (0, 0))  # another host's lock, older than a day
    pulled = pull(tmp_path / "mine", encoder_id, str(demo_store.cache_root))
    assert pulled.files > 0
    assert sorted(p.name for p in base.iterdir()) == [encoder_id]


def test_pull_refuses_a_share_missing_a_part_the_task_configs_list(copy, tmp_path):
    root, encoder_id, part = copy
    shutil.rmtree(part)
    result = CliRunner().invoke(app, ["cache", "pull", encoder_id, str(root), "--cache", str(tmp_path / "mine")])
    assert result.exit_code == 1, result.output
    assert "pulled store is damaged" in result.output and "missing" in result.output
    assert not (features_root(tmp_path / "mine") / encoder_id).exists()


def test_stored_json_that_is_not_an_object_is_one_line(copy):
    from xares_llm.errors import StoreError
    from xares_llm.tasks.data import open_splits
    from xares_llm.tasks.schema import load_task

    root, encoder_id, part = copy
    meta = zarr.open_array(part / "meta", mode="r+")
    values = meta[:]
    values[1] = '{"label": NaN}'  # rewritten through zarr: its checksum holds
    meta[:] = values
    with pytest.raises(StoreError, match=r"clip '.*': its stored json is unusable \(NaN is not JSON"):
        open_splits(root, encoder_id, [load_task(DATASET)], SPLIT)
