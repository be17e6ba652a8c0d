"""`xares check` warns when your encoder gets new weights, and so a new encoder-id, each time it is built."""

from __future__ import annotations

from typer.testing import CliRunner

from xares_llm.cli.main import app

ENCODER = """
import torch


class TinyEncoder(torch.nn.Module):
    output_dim = 8

    def __init__(self):
        super().__init__()
        {seed}
        self.proj = torch.nn.Linear(160, 8)

    def forward(self, audio, audio_attention_mask=None):
        frames = audio[:, : audio.shape[1] // 160 * 160].reshape(audio.shape[0], -1, 160)
        mask = None
        if audio_attention_mask is not None:
            mask = audio_attention_mask[:, : frames.shape[1] * 160 : 160].bool()
        return self.proj(frames), mask
"""


def check(tmp_path, seed: str):
    path = tmp_path / f"tiny_{'seeded' if seed else 'random'}.py"
    path.write_text(ENCODER.replace("{seed}", seed or "pass"))
    return CliRunner().invoke(app, ["check", str(path)])


def test_an_unseeded_random_init_is_warned_about(tmp_path):
    result = check(tmp_path, "")
    assert "warning:" in result.output and "new encoder-id" in " ".join(result.output.split())


def test_a_seeded_init_is_not(tmp_path):
    result = check(tmp_path, "torch.manual_seed(0)")
    assert "warning:" not in result.output and "same encoder-id" in result.output
