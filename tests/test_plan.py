"""`xares extract --plan` on the demo data: the numbers match what an extraction then writes, and an
extraction that would not fit the free disk is refused unless forced."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit
from xares_llm.cli.main import app
from xares_llm.errors import StoreError
from xares_llm.extract.plan import FREE_ENV, plan_extract
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import load_mixture, resolve_tasks


def store_bytes(root) -> int:
    return sum(p.stat().st_size for p in (root / "features").rglob("*") if p.is_file())


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_plan_matches_the_extraction_that_follows(demo_store, tmp_path, dtype):
    tasks = resolve_tasks("demo")
    plan = plan_extract("mel", tasks, tmp_path, demo_store.data_root, dtype=dtype)
    assert plan.dtype == dtype and plan.free_bytes > 0 and plan.probe.speed > 0
    for row in plan.rows:
        stored = FeatureSplit(demo_store.cache_root, demo_store.report.encoder_id, row.dataset, row.split)
        assert row.clips == len(stored) and row.up_to_date == 0 and row.missing == 0
        seconds = sum(stored[i].n_samples for i in range(len(stored))) / 16000
        assert row.audio_hours * 3600 == pytest.approx(seconds, rel=0.2)
        assert row.method == "all decoded" if row.clips <= 16 else row.method == f"16 of {row.clips} decoded"
    report = extract("mel", tasks, tmp_path, demo_store.data_root, dtype=dtype)
    assert report.encoder_id == plan.encoder_id
    written = store_bytes(tmp_path)
    assert written / 1.5 <= plan.total_bytes <= written * 1.5
    again = plan_extract("mel", tasks, tmp_path, demo_store.data_root, dtype=dtype)
    assert again.total_bytes == 0 and all(r.up_to_date == r.shards for r in again.rows)


def test_extraction_refuses_to_start_without_room(demo_store, tmp_path, monkeypatch):
    tasks = list(load_mixture("demo").tasks.values())[:1]
    monkeypatch.setenv(FREE_ENV, "1000")
    with pytest.raises(StoreError, match=r"needs about .* \(\d+ bytes\) but .* has 1000 B \(1000 bytes\) free"):
        extract("mel", tasks, tmp_path, demo_store.data_root, splits=["test"])
    assert not (tmp_path / "features").exists()  # refused before anything was written

    args = ["extract", "mel", "--tasks", tasks[0].name, "--split", "test", "--cache", str(tmp_path)]
    args += ["--data", str(demo_store.data_root)]
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert re.search(r"has 1000 B \(1000 bytes\) free; .* or pass --force$", line)

    planned = runner.invoke(app, [*args, "--plan"], terminal_width=200)
    assert planned.exit_code == 0 and "does not fit" in planned.output and "total" in planned.output
    assert not (tmp_path / "features").exists()  # --plan extracts nothing

    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(FeatureSplit(tmp_path, extract_id(forced.output), tasks[0].dataset.name, "test")) > 0


def extract_id(output: str) -> str:
    return re.search(r"encoder-id (\S+)", output).group(1)


def test_a_malformed_free_space_override_is_one_line(demo_store, tmp_path, monkeypatch):
    monkeypatch.setenv(FREE_ENV, "lots")
    with pytest.raises(StoreError, match=f"{FREE_ENV}='lots' is not a whole number of bytes"):
        extract("mel", list(load_mixture("demo").tasks.values())[:1], tmp_path, demo_store.data_root, splits=["test"])
