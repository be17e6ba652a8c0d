"""`xares cache`: verify finds a flipped byte and a missing file; push/pull round trip through fsspec."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit
from xares_llm.cache.errors import CacheError
from xares_llm.cache.transfer import pull, push
from xares_llm.cache.verify import store_parts, verify_store
from xares_llm.cli.main import app


@pytest.fixture
def store_copy(demo_store, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(demo_store.cache_root, root)
    return root, demo_store.report.encoder_id


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(data)


def test_intact_store_verifies(store_copy):
    root, encoder_id = store_copy
    reports = list(verify_store(root, encoder_id))
    assert len(reports) == 16 and all(r.ok for r in reports)
    result = CliRunner().invoke(app, ["cache", "verify", encoder_id, "--cache", str(root)])
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
    result = CliRunner().invoke(app, ["cache", "verify", encoder_id, "--cache", str(root)])
    assert result.exit_code == 1 and "2 of 16 parts are damaged" in result.output


def test_push_pull_round_trip_and_damaged_pull_keeps_nothing(store_copy, tmp_path):
    root, encoder_id = store_copy
    remote = tmp_path / "remote"
    push(root, encoder_id, str(remote))
    pulled = pull(tmp_path / "other", encoder_id, f"file://{remote}")
    assert len(FeatureSplit(tmp_path / "other", encoder_id, "demo_pitch", "test")) == 16
    assert (pulled / "encoder.json").read_text() == (root / "features" / encoder_id / "encoder.json").read_text()
    flip_a_byte(next((remote / "features" / encoder_id / "demo_count").rglob("frames/c/0/0")))
    with pytest.raises(CacheError, match="damaged"):
        pull(tmp_path / "third", encoder_id, str(remote))
    assert not (tmp_path / "third" / "features" / encoder_id).exists()
    with pytest.raises(CacheError, match="no store nope"):
        pull(tmp_path / "third", "nope", str(remote))


def test_ls_lists_the_store(store_copy):
    root, encoder_id = store_copy
    result = CliRunner().invoke(app, ["cache", "ls", "--cache", str(root)])
    assert result.exit_code == 0 and encoder_id[:10] in result.output
