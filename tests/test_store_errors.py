"""Writing under trouble: a full or read-only disk is one line naming the path, and nothing half-written
stays behind; two writers of one file never share a temp."""

from __future__ import annotations

import errno
import multiprocessing
from pathlib import Path

import pytest
import zarr.storage._local as zarr_local
from lockers import write_demo_together
from typer.testing import CliRunner

from xares_llm.audio.shards import read_samples
from xares_llm.cache.atomic import atomic_write_text
from xares_llm.cli.main import app


def extract_args(tmp_path: Path, cache: Path, data: Path) -> list[str]:
    return ["extract", "mel", "--tasks", "demo_count", "--split", "test", "--cache", str(cache), "--data", str(data)]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name or p.name.endswith((".lock", ".partial"))]


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.ENOSPC, "free disk space or point --cache at a larger disk"),
        (errno.EROFS, "check the permissions or point --cache at a writable directory"),
    ],
)
def test_failed_part_write_is_one_line_and_leaves_nothing(tmp_path, demo_store, monkeypatch, code, hint):
    """The disk fills (or turns read-only) after the first chunks of a part are written."""
    real_put, calls = zarr_local._put, []

    def put(path, value, exclusive=False):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(code, "simulated", str(path))
        return real_put(path, value, exclusive)

    monkeypatch.setattr(zarr_local, "_put", put)
    result = CliRunner().invoke(app, extract_args(tmp_path, tmp_path / "cache", demo_store.data_root))
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot write ") and errors[0].endswith(hint)
    assert "part-demo--demo_count--test--demo_count_test_00000" in errors[0] and "simulated" in errors[0]
    assert leftovers(tmp_path / "cache") == [] and not list((tmp_path / "cache").rglob("part-*.zarr"))


def test_cache_under_a_regular_file_is_one_line(tmp_path, demo_store):
    (tmp_path / "file").write_text("not a directory")
    result = CliRunner().invoke(app, extract_args(tmp_path, tmp_path / "file" / "cache", demo_store.data_root))
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot write {tmp_path / 'file' / 'cache'}") and "encoder.json" in line
    assert "Not a directory" in line and line.endswith("point --cache elsewhere")


def test_two_processes_write_the_demo_shards_at_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    writers = [context.Process(target=write_demo_together, args=(str(tmp_path), barrier)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [w.exitcode for w in writers] == [0, 0]
    shards = sorted(tmp_path.rglob("*.tar"))
    assert len(shards) == 16 and leftovers(tmp_path) == []
    assert all(len(list(read_samples(s))) in (3, 2) for s in shards)


def test_atomic_write_removes_its_temp_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    atomic_write_text(target, "old")

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("xares_llm.cache.atomic.os.fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
