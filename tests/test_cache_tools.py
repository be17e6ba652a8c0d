"""`xares cache`: verify finds damage, push/pull move only what a store holds, every error is one line."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit
from xares_llm.cache.errors import CacheError
from xares_llm.cache.format import part_name
from xares_llm.cache.transfer import member_parts, pull, push
from xares_llm.cache.verify import store_parts, verify_store
from xares_llm.cli.main import app
from xares_llm.tasks.schema import load_task


@pytest.fixture
def store_copy(demo_store, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, root)
    return root, demo_store.report.encoder_id


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(data)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line_error(result) -> str:
    """The CLI's error line; fails when the command crashed with a traceback instead."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, CacheError | ValueError)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def left_behind(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


class Trap:
    """Unpickling this creates `marker`: proof that something ran code from a received file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_v2_pickle_part(path: Path, marker: Path) -> None:
    """A part in Zarr v2 whose arrays hold pickled objects, with our attrs so only its format betrays it."""
    path.mkdir(parents=True)
    (path / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    attrs = {"status": "complete", "format": "xares-features/1", "n_clips": 1, "n_frames": 1}
    attrs["source"] = {"name": "x", "size": 1, "sha256": "0", "mtime_ns": 0}
    (path / ".zattrs").write_text(json.dumps(attrs))
    for name in ("frames", "offsets", "keys", "meta", "n_samples"):
        (path / name).mkdir()
        meta = {"zarr_format": 2, "shape": [1], "chunks": [1], "dtype": "|O", "compressor": None}
        meta |= {"fill_value": None, "filters": [{"id": "pickle"}], "order": "C"}
        (path / name / ".zarray").write_text(json.dumps(meta))
        (path / name / "0").write_bytes(pickle.dumps(np.array([Trap(str(marker))], dtype=object)))


def test_intact_store_verifies(store_copy):
    root, encoder_id = store_copy
    reports = list(verify_store(root, encoder_id))
    assert len(reports) == 16 and all(r.ok for r in reports)
    result = invoke("cache", "verify", encoder_id, "--cache", str(root))
    assert result.exit_code == 0 and "16 parts verified" in result.output
    result = invoke("cache", "verify", encoder_id, "--cache", str(root), "--tasks", "demo")
    assert result.exit_code == 0 and "16 parts verified" in result.output
    result = invoke("cache", "verify", encoder_id[:6], "--cache", str(root))  # a unique prefix, as `train` takes
    assert result.exit_code == 0 and "16 parts verified" in result.output


def test_flipped_byte_and_missing_file_are_found(store_copy):
    root, encoder_id = store_copy
    parts = store_parts(root, encoder_id)
    flip_a_byte(parts[0] / "frames" / "c" / "0" / "0")
    (parts[1] / "keys" / "c" / "0").unlink()
    problems = {r.path: r.problems for r in verify_store(root, encoder_id) if not r.ok}
    assert set(problems) == {parts[0], parts[1]}
    assert "checksum" in problems[parts[0]][0]
    assert problems[parts[1]] == ["keys: 1 chunk files missing (c/0)"]
    result = invoke("cache", "verify", encoder_id, "--cache", str(root))
    assert "2 of 16 parts are damaged" in one_line_error(result)


def test_verify_finds_a_deleted_part_and_a_deleted_encoder_json(store_copy):
    root, encoder_id = store_copy
    store = root / "features" / encoder_id
    gone = store / "demo_count" / "test" / part_name(load_task("demo_count").dataset.shards("test")[1])
    shutil.rmtree(gone)
    result = invoke("cache", "verify", encoder_id, "--cache", str(root))
    assert "1 of 16 parts are damaged" in one_line_error(result)
    assert f"{gone}: missing" in result.output
    (store / "encoder.json").unlink()
    result = invoke("cache", "verify", encoder_id, "--cache", str(root))
    line = one_line_error(result)
    assert "1 of 16 parts are damaged" in line and "encoder.json" in line
    assert f"{store / 'encoder.json'}: missing" in result.output


def test_verify_with_tasks_finds_a_deleted_split_folder(store_copy):
    root, encoder_id = store_copy
    shutil.rmtree(root / "features" / encoder_id / "demo_melody" / "train")
    assert invoke("cache", "verify", encoder_id, "--cache", str(root)).exit_code == 0  # the folder plan alone
    result = invoke("cache", "verify", encoder_id, "--cache", str(root), "--tasks", "demo_melody")
    assert "2 of 16 parts are damaged" in one_line_error(result)
    for shard in load_task("demo_melody").dataset.shards("train"):
        assert f"demo_melody/train/{part_name(shard)}: missing" in result.output
    result = invoke("cache", "verify", encoder_id, "--cache", str(root), "--tasks", "demo_melody", "--split", "test")
    assert result.exit_code == 0, result.output


def test_push_pull_round_trip_and_damaged_pull_keeps_nothing(store_copy, tmp_path):
    root, encoder_id = store_copy
    remote = tmp_path / "remote"
    derived = root / "features" / encoder_id / ".probe"
    derived.mkdir(exist_ok=True)
    (derived / "demo_pitch@train-0123.npy").write_bytes(b"pooled embeddings, rebuilt where needed")
    pushed = push(root, encoder_id, str(remote))
    assert ".probe" in pushed.left_out and not (remote / "features" / encoder_id / ".probe").exists()
    shutil.rmtree(derived)
    pulled = pull(tmp_path / "other", encoder_id, f"file://{remote}")
    assert len(FeatureSplit(tmp_path / "other", encoder_id, "demo_pitch", "test")) == 16
    assert (pulled.path / "encoder.json").read_text() == (root / "features" / encoder_id / "encoder.json").read_text()
    assert pulled.files == sum(1 for p in (root / "features" / encoder_id).rglob("*") if p.is_file())
    flip_a_byte(next((remote / "features" / encoder_id / "demo_count").rglob("frames/c/0/0")))
    with pytest.raises(CacheError, match="damaged"):
        pull(tmp_path / "third", encoder_id, str(remote))
    assert left_behind(tmp_path / "third") == []
    with pytest.raises(CacheError, match="no store nope"):
        pull(tmp_path / "third", "nope", str(remote))


def test_temp_parts_and_locks_of_a_running_extraction_are_left_out(store_copy, tmp_path):
    root, encoder_id = store_copy
    split = root / "features" / encoder_id / "demo_pitch" / "test"
    (split / "part-y.zarr.tmp-host-1-abcd1234").mkdir()
    (split / "part-y.zarr.tmp-host-1-abcd1234" / "zarr.json").write_text("{}")
    (split / "part-y.zarr.lock").write_text("host-1")
    pushed = push(root, encoder_id, str(tmp_path / "remote"))
    assert pushed.left_out == ["demo_pitch/test/part-y.zarr.lock", "demo_pitch/test/part-y.zarr.tmp-host-1-abcd1234"]
    assert not list((tmp_path / "remote").rglob("part-y*"))
    pulled = pull(tmp_path / "other", encoder_id, str(root))
    assert len(pulled.left_out) == 2 and not list(pulled.path.rglob("part-y*"))


@pytest.mark.parametrize("link", ["file outside the store", "/etc/passwd", "part folder", "hard link"])
def test_pull_refuses_links_and_copies_nothing(store_copy, tmp_path, link):
    root, encoder_id = store_copy
    part = store_parts(root, encoder_id)[0]
    secret = tmp_path / "secret.txt"
    if link == "file outside the store":  # a valid chunk moved out and linked back: only a link check can refuse it
        chunk = part / "keys" / "c" / "0"
        shutil.move(chunk, secret)
        chunk.symlink_to(secret)
    elif link == "/etc/passwd":
        (part / "frames" / "c" / "passwd").symlink_to("/etc/passwd")
    elif link == "part folder":
        shutil.move(part, tmp_path / "elsewhere.zarr")
        part.symlink_to(tmp_path / "elsewhere.zarr", target_is_directory=True)
    else:
        os.link(part / "meta" / "c" / "0", secret)
    with pytest.raises(CacheError, match="hard link" if link == "hard link" else "symlink") as caught:
        pull(tmp_path / "dest", encoder_id, str(root))
    assert "\n" not in str(caught.value) and part.name in str(caught.value)
    assert left_behind(tmp_path / "dest") == []
    result = invoke("cache", "pull", encoder_id, str(root), "--cache", str(tmp_path / "dest"))
    assert part.name in one_line_error(result)
    assert left_behind(tmp_path / "dest") == []


def test_push_refuses_a_symlink_in_the_local_store(store_copy, tmp_path):
    root, encoder_id = store_copy
    (store_parts(root, encoder_id)[0] / "frames" / "c" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(CacheError, match="symlink"):
        push(root, encoder_id, str(tmp_path / "remote"))
    assert left_behind(tmp_path / "remote") == []


def test_pull_refuses_dotdot_names_and_unknown_formats(store_copy, tmp_path, request):
    root, encoder_id = store_copy
    fs = fsspec.filesystem("memory")
    base = f"/{request.node.name}"
    request.addfinalizer(lambda: fs.rm(base, recursive=True))
    store = root / "features" / encoder_id
    for path in store.rglob("*"):
        if path.is_file():
            fs.pipe(f"{base}/features/{encoder_id}/{path.relative_to(store).as_posix()}", path.read_bytes())
    assert pull(tmp_path / "ok", encoder_id, f"memory://{base}").files > 0  # the in-memory copy is a valid source
    fs.pipe(f"{base}/features/{encoder_id}/demo_pitch/../../../evil", b"x")
    with pytest.raises(CacheError, match=r"'\.\.'"):
        pull(tmp_path / "dest", encoder_id, f"memory://{base}")
    assert left_behind(tmp_path / "dest") == []
    fs.rm(f"{base}/features/{encoder_id}/demo_pitch/../../../evil")
    info = json.loads((store / "encoder.json").read_text()) | {"format": "xares-features/9"}
    fs.pipe(f"{base}/features/{encoder_id}/encoder.json", json.dumps(info).encode())
    with pytest.raises(CacheError, match="xares-features/9"):
        pull(tmp_path / "dest", encoder_id, f"memory://{base}")
    assert left_behind(tmp_path / "dest") == []


@pytest.mark.parametrize(
    ("name", "problem"),
    [("/etc/passwd", "absolute"), ("a/../b", "'..'"), ("a//b", "empty"), ("./a", "'.'"), ("a\\..\\b", "backslash")],
)
def test_member_names_are_checked(name, problem):
    with pytest.raises(CacheError, match=problem):
        member_parts(name)
    assert member_parts("demo_pitch/test/part-x.zarr/zarr.json") == ("demo_pitch", "test", "part-x.zarr", "zarr.json")


def test_an_unknown_protocol_is_one_line(store_copy, tmp_path):
    root, encoder_id = store_copy
    result = invoke("cache", "pull", encoder_id, "nosuchproto://x", "--cache", str(tmp_path / "dest"))
    assert "nosuchproto://x: Protocol not known" in one_line_error(result)
    result = invoke("cache", "push", encoder_id, "nosuchproto://x", "--cache", str(root))
    assert "nosuchproto://x: Protocol not known" in one_line_error(result)
    assert left_behind(tmp_path / "dest") == []


def test_an_encoder_id_that_is_a_path_is_refused(store_copy, tmp_path):
    root, _ = store_copy
    for bad in ("../escape", "a/b", "..", ".hidden"):
        with pytest.raises(CacheError, match="encoder-id"):
            pull(tmp_path / "dest", bad, str(root))
    assert not (tmp_path / "escape").exists() and left_behind(tmp_path / "dest") == []


def test_a_zarr_v2_pickle_part_is_never_opened(store_copy, tmp_path):
    root, encoder_id = store_copy
    marker = tmp_path / "unpickled"
    evil = root / "features" / encoder_id / "demo_pitch" / "test" / "part-evil.zarr"
    write_v2_pickle_part(evil, marker)
    result = invoke("cache", "verify", encoder_id, "--cache", str(root))
    assert "1 of 17 parts are damaged" in one_line_error(result)
    assert f"{evil}: Zarr v2" in result.output
    result = invoke("cache", "ls", "--cache", str(root))
    assert result.exit_code == 0, result.output
    assert "unreadable" in result.output and f"{evil}: Zarr v2" in result.output
    with pytest.raises(CacheError, match=r"part-evil\.zarr: Zarr v2"):
        FeatureSplit(root, encoder_id, "demo_pitch", "test")
    with pytest.raises(CacheError, match=r"part-evil\.zarr: Zarr v2"):
        pull(tmp_path / "dest", encoder_id, str(root))
    assert left_behind(tmp_path / "dest") == []
    assert not marker.exists()


def test_a_part_with_a_foreign_codec_is_refused(store_copy):
    root, encoder_id = store_copy
    part = store_parts(root, encoder_id)[0]
    meta = json.loads((part / "keys" / "zarr.json").read_text())
    meta["codecs"].insert(1, {"name": "numcodecs.pickle"})
    (part / "keys" / "zarr.json").write_text(json.dumps(meta))
    (problem,) = [r.problems for r in verify_store(root, encoder_id) if not r.ok]
    assert problem == ["keys: codec 'numcodecs.pickle' is not one this format writes"]


def test_pull_into_an_unwritable_place_is_one_line_and_leaves_nothing(store_copy, tmp_path):
    root, encoder_id = store_copy
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CacheError, match=re.escape(f"cannot write {blocker}")) as caught:
        pull(blocker / "cache", encoder_id, str(root))
    assert "--cache" in str(caught.value)
    result = invoke("cache", "pull", encoder_id, str(root), "--cache", str(blocker / "cache"))
    assert str(blocker) in one_line_error(result)
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "cache"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o555, so a read-only folder blocks nothing")
def test_pull_into_a_read_only_cache(store_copy, tmp_path):
    root, encoder_id = store_copy
    target = tmp_path / "ro"
    (target / "features").mkdir(parents=True)
    target.joinpath("features").chmod(0o555)
    try:
        with pytest.raises(CacheError, match="cannot write"):
            pull(target, encoder_id, str(root))
        assert left_behind(target) == ["features"]
    finally:
        target.joinpath("features").chmod(0o755)


def test_ls_lists_the_store(store_copy):
    root, encoder_id = store_copy
    result = invoke("cache", "ls", "--cache", str(root))
    assert result.exit_code == 0 and encoder_id[:10] in result.output


def command_paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the app (typer builds them on its own copy of click)."""
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*path, name))
    return paths


def test_every_help_page_renders():
    paths = command_paths(typer.main.get_command(app))
    assert ("cache", "push") in paths and ("cache", "pull") in paths and len(paths) > 10
    for path in paths:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, f"xares {' '.join(path)} --help: {result.exception!r}"
        assert "Usage" in result.output
