"""`xares extract --plan` writes nothing, and says so when there is nothing yet to estimate."""

from __future__ import annotations

from typer.testing import CliRunner

from xares_llm.cli.main import app


def files_under(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_the_demo_plan_counts_the_shards_extraction_would_generate_and_writes_none(tmp_path):
    args = ["extract", "mel", "--tasks", "demo", "--plan", "--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert files_under(tmp_path) == []
    text = " ".join(result.output.split())
    assert "16 demo shards are not written yet" in text and "wrote nothing" in text
    total = next(line for line in result.output.splitlines() if "total" in line)
    assert " 2720 " in total  # the clips of the generated shards, estimated from scratch copies


def test_a_task_not_downloaded_says_so_instead_of_fits(tmp_path):
    result = CliRunner().invoke(app, ["extract", "mel", "--tasks", "esc50", "--plan", "--cache", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "nothing to estimate yet: `xares download --tasks esc50` first" in text and "; fits" not in text
    assert "5 shards are not downloaded yet" in text
    assert files_under(tmp_path) == []
