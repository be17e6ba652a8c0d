"""What every check shares: the encoder under test, its device, what earlier checks learned, the rows so far."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from xares_llm.constants import SAMPLE_RATE, WINDOW_SECONDS

REFERENCE_BATCH = (3, 50_000)  # (clips, samples): the reference checker's probe, randn(3, 50000)
PROBE_SECONDS = (1.23, 2.71, 4.0)  # clip lengths of the padded batch; unequal so two of three are padded
PROBE_GAINS = (0.05, 0.3, 0.9)  # per-clip amplitude, so statistics over the batch show up as differences
LONG_CLIP_SECONDS = WINDOW_SECONDS  # one training crop (30 s) at batch 1: time, memory, frame rate, coverage
SEED = 0


@dataclass
class CheckResult:
    """One row of the report. A skipped mandatory check counts as failed."""

    name: str
    passed: bool
    mandatory: bool
    detail: str  # what was expected, what came back and, on failure, how to fix it
    skipped: bool = False


class Skip(Exception):
    """Raised inside a check when an input it needs is missing; the message is the reason."""


@dataclass
class State:
    """What earlier checks learned, for the checks that build on it."""

    output_dim: int | None = None
    output: object = None  # the reference call's raw return value
    features: torch.Tensor | None = None  # reference call, (3, T', D)
    fatal: str | None = None  # set once the output is unusable; later checks are skipped with it
    finite_inputs: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # (what was fed, features)
    long_frames: int | None = None  # valid frames of the 30 s clip
    long_seconds: float | None = None  # wall time of encoding it
    memory: tuple[str, bool] | None = None  # (peak memory text, within the limit)


class Context:
    """The encoder under test and the report being built; checks read and extend it in report order."""

    def __init__(self, encoder: object, device: torch.device):
        self.encoder = encoder
        self.device = device
        self.state = State()
        self.results: dict[str, CheckResult] = {}
        self.skips: dict[str, str] = {}  # check name -> why it was skipped
        self.generator = torch.Generator().manual_seed(SEED)

    def require(self, *names: str) -> None:
        """Skip the current check unless the named checks passed; a skipped one passes on its own reason."""
        if self.state.fatal:
            raise Skip(self.state.fatal)
        for name in names:
            if name in self.skips:
                raise Skip(self.skips[name])
            if not self.results[name].passed:
                raise Skip(f"needs {name}")

    def noise(self, seconds: float, gain: float = 1.0) -> np.ndarray:
        n = round(seconds * SAMPLE_RATE)
        return (gain * torch.randn(n, generator=self.generator)).clamp(-1.0, 1.0).numpy()

    def probe_clips(self) -> list[np.ndarray]:
        return [self.noise(s, g) for s, g in zip(PROBE_SECONDS, PROBE_GAINS, strict=True)]

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
