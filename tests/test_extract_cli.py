"""`xares extract` through the CLI: demo shards appear when missing, a rerun writes nothing."""

from __future__ import annotations

import zarr
from typer.testing import CliRunner

from xares_llm.cli.main import app


def test_extract_twice(tmp_path):
    args = [
        "extract",
        "mel",
        "--tasks",
        "demo_count",
        "--split",
        "test",
        "--cache",
        str(tmp_path / "c"),
        "--data",
        str(tmp_path / "d"),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "wrote 2 parts" in first.output
    assert (tmp_path / "d/demo/demo_count/test/demo_count_test_000001.tar").is_file()  # written first
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "c").rglob("*")}
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "2 parts up to date" in second.output and "wrote" not in second.output
    assert files == {p: p.stat().st_mtime_ns for p in (tmp_path / "c").rglob("*")}
    part = next((tmp_path / "c").rglob("part-*.zarr"))
    group = zarr.open_group(part, mode="r")
    assert group["offsets"][-1] == group["frames"].shape[0] and group.attrs["status"] == "complete"


def test_bad_split_and_unknown_task(tmp_path):
    result = CliRunner().invoke(app, ["extract", "mel", "--tasks", "demo", "--split", "dev", "--cache", str(tmp_path)])
    assert result.exit_code == 2 and "unknown split 'dev'" in result.output
    result = CliRunner().invoke(app, ["extract", "mel", "--tasks", "esc5", "--cache", str(tmp_path)])
    assert result.exit_code == 1 and "Did you mean esc50" in result.output
