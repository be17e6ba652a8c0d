"""`xares check`: good encoders pass, each broken one fails with its own reason, spec forms reach the loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from xares_llm.check import CheckResult, all_mandatory_passed, check_encoder, run_checks
from xares_llm.check.cost import format_speed
from xares_llm.cli.console import out
from xares_llm.cli.main import app

FIXTURES = Path(__file__).parent / "fixtures" / "encoders"
MINIMAL = FIXTURES / "minimal.py"
BROKEN = FIXTURES / "broken.py"
PAIR = FIXTURES / "pair.py"

runner = CliRunner()


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def first_real_failure(results: list[CheckResult]) -> CheckResult:
    """The first mandatory check that ran and failed (skips follow from it and are not the reason)."""
    return next(r for r in results if r.mandatory and not r.passed and not r.skipped)


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep table cells on one line so a reason can be found in the CLI output as one string."""
    monkeypatch.setattr(out, "_width", 400)


# -- encoders that pass --------------------------------------------------------------------------


def test_mel_passes_every_check() -> None:
    results = by_name(run_checks("mel"))
    assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]
    assert results["feature dim"].detail == "D = 320 == output_dim"
    assert results["frame rate"].mandatory  # mel declares frame_rate_hz, so it must match
    assert results["frame rate"].detail.startswith("25.00 Hz measured")
    assert results["30 s clip"].detail.startswith("750 frames")
    assert results["coverage"].mandatory and results["coverage"].detail.endswith("valid frames cover ~100% of the clip")
    assert not results["time"].mandatory and not results["peak memory"].mandatory  # informational on CPU
    assert memory_mib(results["peak memory"]) > 0  # the forward's own peak, not memory an earlier call left behind


def memory_mib(result: CheckResult) -> float:
    return float(re.match(r"~([\d.]+) MiB at peak", result.detail).group(1))


def test_minimal_contract_only_encoder_passes() -> None:
    results = run_checks(str(MINIMAL))
    assert all_mandatory_passed(results), [r for r in results if not r.passed]
    named = by_name(results)
    assert named["mask type"].detail.startswith("None")
    assert named["padding mask"].detail.startswith("no mask (None)")
    assert named["sampling_rate"].detail.startswith("not declared")
    assert not named["frame rate"].mandatory
    assert named["frame rate"].detail.startswith("50.00 frames per second")


class _DropoutEncoder(nn.Module):
    """Passes only in eval mode: in train mode dropout makes batched != single-clip output."""

    def __init__(self) -> None:
        super().__init__()
        self.output_dim = 16
        self.proj = nn.Sequential(nn.Linear(320, 16), nn.Dropout(0.5))

    def forward(self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None):
        n = audio.shape[1] // 320
        return self.proj(audio[:, : n * 320].reshape(audio.shape[0], n, 320)), None


def test_encoder_runs_in_eval_mode() -> None:
    encoder = _DropoutEncoder().train()
    results = check_encoder(encoder)
    assert all_mandatory_passed(results), [r for r in results if not r.passed]
    assert not encoder.training


# -- broken encoders, each with its own reason ------------------------------------------------------

BROKEN_CASES = [
    ("WrongDimEncoder", "feature dim", "features have D = 32 but output_dim = 320"),
    ("PooledEncoder", "features 3-D", "features must be 3-D [B, T', D], got 2-D of shape (3, 32)"),
    ("BareTensorEncoder", "returns 2-tuple", "got a bare Tensor of shape (3, 156, 32)"),
    ("ShortMaskEncoder", "mask length", "feature_mask has shape (3, 155) but features have 3 clips of 156 frames"),
    ("NaNEncoder", "finite output", "NaN and 0 Inf values in the features of torch.randn(3, 50000)"),
    ("SilenceNaNEncoder", "finite output", "NaN and 0 Inf values in the features of 1 s of silence"),
    ("BatchMaxEncoder", "batch consistency", "the 1.23 s clip differs between a padded batch and alone"),
    ("NoOutputDimEncoder", "output_dim", "no attribute output_dim"),
    ("AllRealMaskEncoder", "padding mask", "has all 200 frames marked real"),
    ("OneArgEncoder", "forward signature", "forward takes 1 positional argument(s)"),
    ("WrongRateEncoder", "sampling_rate", "sampling_rate is 44100 but every clip is fed at 16000 Hz"),
    ("WrongFrameRateEncoder", "frame rate", "frame_rate_hz declares 100 Hz but one 30 s clip gave 1500 frames"),
    (
        "HalfMaskEncoder",
        "coverage",
        "tone bursts at 70%, 90% of a 30 s clip change no valid frame (the last quarter of the clip reaches none); "
        "valid frames cover ~50% of the clip",
    ),
    ("ShortInputEncoder", "30 s clip", "encoding one 30 s clip at batch 1 raised ValueError: input longer than 10 s"),
]


@pytest.mark.parametrize(("cls", "check", "reason"), BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES])
def test_broken_encoder_fails_with_its_reason(cls: str, check: str, reason: str) -> None:
    results = run_checks(f"{BROKEN}:{cls}")
    assert not all_mandatory_passed(results)
    failure = first_real_failure(results)
    assert failure.name == check, failure
    assert reason in failure.detail


def test_reasons_are_distinct() -> None:
    assert len({reason for _, _, reason in BROKEN_CASES}) == len(BROKEN_CASES)


def test_checks_after_a_fatal_failure_are_skipped_with_a_reason() -> None:
    results = by_name(run_checks(f"{BROKEN}:BareTensorEncoder"))
    after = ["features 3-D", "mask length", "batch consistency", "30 s clip", "time"]
    for name in after:
        assert results[name].skipped and not results[name].passed
        assert results[name].detail == "skipped: the encoder does not return (features, feature_mask)"
    assert results["output_dim"].passed  # checks before the failure still ran


def test_half_mask_passes_the_other_checks_and_reports_25_hz() -> None:
    """What the reference's Whisper example does: only coverage sees that half of every clip is lost."""
    results = run_checks(f"{BROKEN}:HalfMaskEncoder")
    assert [r.name for r in results if not r.passed] == ["coverage"]
    assert by_name(results)["frame rate"].detail == "25.00 Hz measured, 25 Hz declared"


def test_rows_after_a_failed_row_say_what_they_need() -> None:
    results = by_name(run_checks(f"{BROKEN}:ShortInputEncoder"))
    for name in ("coverage", "frame rate", "time", "peak memory"):
        assert results[name].skipped and results[name].detail == "skipped: needs 30 s clip", results[name]
    chained = by_name(run_checks(f"{BROKEN}:ShortMaskEncoder"))  # 30 s clip is skipped itself: its reason carries on
    for name in ("padding mask", "batch consistency", "30 s clip", "coverage", "time"):
        assert chained[name].detail == "skipped: needs mask length", chained[name]


def test_speed_keeps_significant_digits_below_real_time() -> None:
    assert [format_speed(s) for s in (0.4, 0.0432, 3.44, 9.96, 137.2)] == ["0.4x", "0.043x", "3.4x", "10x", "137x"]


def test_all_real_mask_also_breaks_batch_consistency() -> None:
    results = by_name(run_checks(f"{BROKEN}:AllRealMaskEncoder"))
    assert "gives 200 valid frames in a padded batch but 61 alone" in results["batch consistency"].detail


def test_not_a_module_is_reported_not_raised() -> None:
    results = check_encoder(object())
    assert results[0].name == "nn.Module" and not results[0].passed
    assert "expected a torch.nn.Module, got object" in results[0].detail
    assert all(r.skipped for r in results[1:])


# -- the command line -------------------------------------------------------------------------------


def test_cli_mel_exits_zero() -> None:
    result = runner.invoke(app, ["check", "mel"])
    assert result.exit_code == 0, result.output
    assert "all mandatory checks passed" in result.output
    assert "batch consistency" in result.output


def test_cli_relative_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = runner.invoke(app, ["check", "minimal.py"])
    assert result.exit_code == 0, result.output


def test_cli_named_class_in_file_with_two_candidates(wide_console: None) -> None:
    result = runner.invoke(app, ["check", f"{PAIR}:WideEncoder"])
    assert result.exit_code == 0, result.output
    assert "D = 128 == output_dim" in result.output


def test_cli_two_candidates_without_a_name_lists_them() -> None:
    result = runner.invoke(app, ["check", str(PAIR)])
    assert result.exit_code == 1
    assert "exactly one class whose name ends in 'Encoder' (found: MinimalEncoder, WideEncoder)" in result.output
    assert "Traceback" not in result.output


CLI_BROKEN_CASES = [c for c in BROKEN_CASES if c[0] in ("WrongDimEncoder", "BareTensorEncoder", "BatchMaxEncoder")]


@pytest.mark.parametrize(("cls", "check", "reason"), CLI_BROKEN_CASES, ids=[c[0] for c in CLI_BROKEN_CASES])
def test_cli_broken_encoder_exits_one_with_its_reason(cls: str, check: str, reason: str, wide_console: None) -> None:
    result = runner.invoke(app, ["check", f"{BROKEN}:{cls}"])
    assert result.exit_code == 1, result.output
    assert reason in result.output
    assert "mandatory check(s) failed:" in result.output and check in result.output


def test_cli_not_a_module() -> None:
    result = runner.invoke(app, ["check", f"{BROKEN}:NotAModuleEncoder"])
    assert result.exit_code == 1
    assert "NotAModuleEncoder is not a torch.nn.Module" in result.output


def test_cli_encoder_args_reach_the_constructor(wide_console: None) -> None:
    result = runner.invoke(app, ["check", str(MINIMAL), "--encoder-args", '{"dim": 48}'])
    assert result.exit_code == 0, result.output
    assert "D = 48 == output_dim" in result.output


def test_cli_unknown_encoder_arg_is_a_clear_error() -> None:
    result = runner.invoke(app, ["check", str(MINIMAL), "--encoder-args", '{"width": 48}'])
    assert result.exit_code == 1
    assert "constructing MinimalEncoder with {'width': 48} raised TypeError" in " ".join(result.output.split())


def test_cli_constructor_failure_is_one_line_naming_file_and_line(tmp_path) -> None:
    source = tmp_path / "bad_init.py"
    source.write_text(
        "import torch\n\n\nclass BadInitEncoder(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        raise RuntimeError('weights not found')\n"
    )
    result = runner.invoke(app, ["check", str(source)], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "raised RuntimeError: weights not found" in lines[0]
    assert f"{source}:7 in __init__" in lines[0]


def test_cli_invalid_json_is_a_clear_error() -> None:
    result = runner.invoke(app, ["check", "mel", "--encoder-args", "{dim: 48"])
    assert result.exit_code == 1
    assert "--encoder-args is not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_cli_unknown_device() -> None:
    result = runner.invoke(app, ["check", "mel", "--device", "tpu"])
    assert result.exit_code == 1
    assert "use cpu, cuda or cuda:N" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal when CUDA is absent")
def test_cli_cuda_without_cuda_is_refused() -> None:
    result = runner.invoke(app, ["check", "mel", "--device", "cuda"])
    assert result.exit_code == 1
    assert "torch.cuda.is_available() is False" in result.output


@pytest.mark.requires_cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mel_passes_on_cuda() -> None:
    results = by_name(run_checks("mel", device="cuda"))
    assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]
    assert results["peak memory"].mandatory
    assert "GiB allocated at peak" in results["peak memory"].detail


def test_cli_help_shows_examples() -> None:
    result = runner.invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    assert "xares check my_encoders.py:LargeEncoder" in result.output


class NormDropEncoder(nn.Module):
    """20 ms frames, BatchNorm over their features and dropout: train mode changes the output."""

    output_dim = 8

    def __init__(self):
        super().__init__()
        self.proj, self.norm, self.drop = nn.Linear(320, 8), nn.BatchNorm1d(8), nn.Dropout(0.1)

    def forward(self, audio, audio_attention_mask=None):
        frames = self.proj(audio[:, : audio.shape[1] // 320 * 320].reshape(audio.shape[0], -1, 320))
        return self.drop(self.norm(frames.transpose(1, 2)).transpose(1, 2)), None


def test_train_mode_differences_are_reported_and_the_encoder_left_as_it_was():
    encoder = NormDropEncoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    row = by_name(check_encoder(encoder))["train mode"]
    assert not row.passed and not row.mandatory  # advisory: the encoder still passes
    assert "1 BatchNorm layers, 1 dropout layers" in row.detail
    assert "reference system runs the encoder in train mode" in row.detail
    assert not encoder.training and all(v.equal(encoder.state_dict()[k]) for k, v in before.items())


def test_train_mode_is_quiet_for_an_encoder_without_such_layers():
    row = by_name(run_checks(str(MINIMAL)))["train mode"]
    assert row.passed and "same features" in row.detail
