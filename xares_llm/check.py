"""`xares check`: does an encoder keep the contract (SPEC.md section 1), and the promises we rely on?

The reference checker calls ``encoder(torch.randn(3, 50000), None)`` and looks at types and shapes.
Extraction also trusts four things it does not check, each of which silently corrupts a store when
broken: a feature mask as long as the features, a mask that really marks padding, finite numbers,
and output that does not depend on the other clips in the batch. We check those too, and measure the
frame rate, time and peak memory for one 30 s clip.

Every check yields one `CheckResult` with a reason a user can act on. Checks whose inputs a failed
check could not provide (no tuple came back, so there is no mask to check) are reported as skipped.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from xares_llm.constants import SAMPLE_RATE, WINDOW_SECONDS
from xares_llm.devices import resolve_device
from xares_llm.encoders.loader import load_encoder
from xares_llm.encoding import encode_clips, pad_batch, unpack_output, valid_frame_counts

REFERENCE_BATCH = (3, 50_000)  # (clips, samples): the reference checker's probe, randn(3, 50000)
PROBE_SECONDS = (1.23, 2.71, 4.0)  # clip lengths of the padded batch; unequal so two of three are padded
PROBE_GAINS = (0.05, 0.3, 0.9)  # per-clip amplitude, so statistics over the batch show up as differences
SILENCE_SECONDS = 1.0  # an all-zero clip: real datasets have them, and x / x.std() turns them into NaN
TIMING_SECONDS = WINDOW_SECONDS  # one training crop (30 s) at batch 1 for time, memory and frame rate
FRAME_RATE_RTOL = 0.02  # declared frame_rate_hz may differ from the measured rate by 2 %
# Batched vs single-clip output: max |difference| relative to the clip's max |feature|. CUDA gets
# more room because cuDNN convolutions use TF32 by default.
BATCH_RTOL = {"cpu": 1e-3, "cuda": 1e-2}
GPU_MEMORY_LIMIT_BYTES = 24 * 1024**3  # the challenge rule: the encoder alone, batch 1, fits a 24 GB card
SEED = 0


@dataclass
class CheckResult:
    """One row of the report. A skipped mandatory check counts as failed."""

    name: str
    passed: bool
    mandatory: bool
    detail: str  # what was expected, what came back and, on failure, how to fix it
    skipped: bool = False


def run_checks(spec: str, kwargs: str | dict | None = None, device: str = "cpu") -> list[CheckResult]:
    """Load the encoder named by `spec` (kwargs as JSON or dict) and run every check on `device`.

    Spec errors (file not found, several candidate classes, bad JSON) raise `EncoderError`.
    """
    torch_device = resolve_device(device)
    loaded = load_encoder(spec, kwargs)
    return check_encoder(loaded.module, torch_device)


def check_encoder(encoder: object, device: str | torch.device = "cpu") -> list[CheckResult]:
    """Run every check on a constructed encoder; never raises for a broken encoder."""
    return _Checker(encoder, resolve_device(device)).run()


def all_mandatory_passed(results: Sequence[CheckResult]) -> bool:
    return all(r.passed for r in results if r.mandatory)


class _Skip(Exception):
    """Raised inside a check when an input it needs is missing; the message is the reason."""


@dataclass
class _State:
    """What earlier checks learned, for the checks that build on it."""

    output_dim: int | None = None
    output: object = None  # the reference call's raw return value
    features: torch.Tensor | None = None  # reference call, (3, T', D)
    fatal: str | None = None  # set once the output is unusable; later checks are skipped with it
    finite_inputs: list[tuple[str, torch.Tensor]] = field(default_factory=list)  # (what was fed, features)
    timing: tuple[int, float, str, bool] | None = None  # (frames, seconds, memory text, within limit)


class _Checker:
    def __init__(self, encoder: object, device: torch.device):
        self.encoder = encoder
        self.device = device
        self.state = _State()
        self.results: dict[str, CheckResult] = {}
        self.generator = torch.Generator().manual_seed(SEED)

    def run(self) -> list[CheckResult]:
        declares_rate = hasattr(self.encoder, "frame_rate_hz")
        on_cuda = self.device.type == "cuda"
        # (name, mandatory, check) in report order. Frame rate is mandatory only when the encoder
        # declares `frame_rate_hz`; peak memory only on CUDA, where the 24 GB rule can be measured.
        steps: list[tuple[str, bool, Callable[[], tuple[bool, str]]]] = [
            ("nn.Module", True, self.check_module),
            ("output_dim", True, self.check_output_dim),
            ("sampling_rate", True, self.check_sampling_rate),
            ("forward signature", True, self.check_signature),
            ("reference call", True, self.check_reference_call),
            ("returns 2-tuple", True, self.check_tuple),
            ("features 3-D", True, self.check_features),
            ("feature dim", True, self.check_feature_dim),
            ("mask type", True, self.check_mask_type),
            ("mask length", True, self.check_mask_length),
            ("padding mask", True, self.check_padding_mask),
            ("batch consistency", True, self.check_batch_consistency),
            ("finite output", True, self.check_finite),  # last of these: it covers the batches' output too
            ("30 s clip", True, self.check_long_clip),
            ("frame rate", declares_rate, self.check_frame_rate),
            ("time", False, self.check_time),
            ("peak memory", on_cuda, self.check_memory),
        ]
        with torch.inference_mode():
            for name, mandatory, step in steps:
                try:
                    passed, detail = step()
                    self.results[name] = CheckResult(name, passed, mandatory, detail)
                except _Skip as skip:
                    self.results[name] = CheckResult(name, False, mandatory, f"skipped: {skip}", skipped=True)
                except Exception as e:  # an encoder odd enough to break the check itself still gets a row
                    detail = f"the check raised {type(e).__name__}: {e}"
                    self.results[name] = CheckResult(name, False, mandatory, detail)
        return list(self.results.values())

    # -- helpers --------------------------------------------------------------------------------

    def require(self, *names: str) -> None:
        """Skip the current check unless the named checks passed."""
        if self.state.fatal:
            raise _Skip(self.state.fatal)
        for name in names:
            if not self.results[name].passed:
                raise _Skip(f"needs a passing '{name}' check")

    def noise(self, seconds: float, gain: float = 1.0) -> np.ndarray:
        n = round(seconds * SAMPLE_RATE)
        return (gain * torch.randn(n, generator=self.generator)).clamp(-1.0, 1.0).numpy()

    def probe_clips(self) -> list[np.ndarray]:
        return [self.noise(s, g) for s, g in zip(PROBE_SECONDS, PROBE_GAINS, strict=True)]

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # -- structure ------------------------------------------------------------------------------

    def check_module(self) -> tuple[bool, str]:
        if not isinstance(self.encoder, torch.nn.Module):
            self.state.fatal = "the encoder is not a torch.nn.Module"
            return False, (
                f"expected a torch.nn.Module, got {type(self.encoder).__name__}; "
                "subclass torch.nn.Module and call super().__init__()"
            )
        self.encoder.eval()  # the reference trains with the encoder in train mode (SPEC 2); we do not
        try:
            self.encoder.to(self.device)
        except Exception as e:
            self.state.fatal = f"moving the encoder to {self.device} failed"
            return False, f"encoder.to({str(self.device)!r}) raised {type(e).__name__}: {e}"
        n_params = sum(p.numel() for p in self.encoder.parameters())
        return True, f"{type(self.encoder).__name__}, {n_params:,} parameters, eval mode on {self.device}"

    def check_output_dim(self) -> tuple[bool, str]:
        self.require("nn.Module")
        if not hasattr(self.encoder, "output_dim"):
            return False, "no attribute output_dim; set self.output_dim = D (the feature size) in __init__"
        value = self.encoder.output_dim
        if isinstance(value, bool) or not isinstance(value, int):
            return False, f"output_dim must be an int, got {value!r} ({type(value).__name__}); use int(...)"
        if value <= 0:
            return False, f"output_dim must be positive, got {value}"
        self.state.output_dim = value
        return True, f"output_dim = {value}"

    def check_sampling_rate(self) -> tuple[bool, str]:
        self.require("nn.Module")
        if not hasattr(self.encoder, "sampling_rate"):
            return True, f"not declared; audio is fed at {SAMPLE_RATE} Hz"
        rate = self.encoder.sampling_rate
        if rate != SAMPLE_RATE:
            return False, (
                f"sampling_rate is {rate!r} but every clip is fed at {SAMPLE_RATE} Hz; "
                f"resample inside forward or set sampling_rate = {SAMPLE_RATE}"
            )
        return True, f"sampling_rate = {SAMPLE_RATE}"

    def check_signature(self) -> tuple[bool, str]:
        self.require("nn.Module")
        try:
            parameters = inspect.signature(self.encoder.forward).parameters.values()
        except (TypeError, ValueError) as e:
            return False, f"cannot inspect forward's signature: {e}"
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters):
            return True, f"forward({', '.join(p.name for p in positional) or '*args'})"
        return False, (
            f"forward takes {len(positional)} positional argument(s) but is called as "
            "forward(audio, audio_attention_mask); add `audio_attention_mask=None`"
        )

    # -- the reference call ---------------------------------------------------------------------

    def check_reference_call(self) -> tuple[bool, str]:
        self.require("nn.Module")
        audio = torch.randn(*REFERENCE_BATCH, generator=self.generator).to(self.device)
        try:
            self.state.output = self.encoder(audio, None)
        except Exception as e:
            self.state.fatal = "the reference call failed"
            return False, f"encoder(torch.randn{REFERENCE_BATCH}, None) raised {type(e).__name__}: {e}"
        self.synchronize()
        return True, f"encoder(torch.randn{REFERENCE_BATCH}, None) returned"

    def check_tuple(self) -> tuple[bool, str]:
        self.require()
        output = self.state.output
        if isinstance(output, tuple | list) and len(output) == 2:
            return True, f"{type(output).__name__} of 2"
        self.state.fatal = "the encoder does not return (features, feature_mask)"
        got = _describe(output)
        if isinstance(output, tuple | list):
            got = f"a {type(output).__name__} of {len(output)} items"
        return False, f"expected a 2-tuple (features, feature_mask), got {got}; return `features, None` if no mask"

    def check_features(self) -> tuple[bool, str]:
        self.require()
        features = self.state.output[0]
        batch = REFERENCE_BATCH[0]
        if not isinstance(features, torch.Tensor):
            self.state.fatal = "features are not a tensor"
            return False, f"features must be a torch.Tensor [B, T', D], got {_describe(features)}"
        if features.dim() != 3:
            self.state.fatal = "features are not 3-D"
            return False, (
                f"features must be 3-D [B, T', D], got {features.dim()}-D of shape {tuple(features.shape)}; "
                "keep the time axis (no pooling over time), one row per frame"
            )
        if features.shape[0] != batch:
            self.state.fatal = "features have the wrong batch size"
            return False, f"features must have batch size {batch} (one row per input clip), got {tuple(features.shape)}"
        if features.shape[1] == 0:
            self.state.fatal = "features have no frames"
            return False, f"features have 0 frames for {REFERENCE_BATCH[1]} samples: {tuple(features.shape)}"
        if not features.is_floating_point():
            self.state.fatal = "features are not floating point"
            return False, f"features must be floating point, got {features.dtype}"
        self.state.features = features.detach().float().cpu()
        return True, f"shape {tuple(features.shape)}, {features.dtype}, on {features.device}"

    def check_feature_dim(self) -> tuple[bool, str]:
        self.require("features 3-D")
        got = self.state.features.shape[-1]
        if self.state.output_dim is None:
            raise _Skip(f"no valid output_dim to compare with (features have D = {got})")
        if got != self.state.output_dim:
            return False, (
                f"features have D = {got} but output_dim = {self.state.output_dim}; "
                f"make output_dim equal the last dimension of the features ({got}) or fix the projection"
            )
        return True, f"D = {got} == output_dim"

    def check_mask_type(self) -> tuple[bool, str]:
        self.require("features 3-D")
        mask = self.state.output[1]
        if mask is None:
            return True, "None: every frame counts as real"
        if not isinstance(mask, torch.Tensor):
            return False, f"feature_mask must be None or a 2-D torch.Tensor [B, T'], got {_describe(mask)}"
        if mask.dim() != 2:
            return False, f"feature_mask must be 2-D [B, T'], got {mask.dim()}-D of shape {tuple(mask.shape)}"
        return True, f"{mask.dtype} tensor"

    def check_mask_length(self) -> tuple[bool, str]:
        self.require("mask type")
        mask = self.state.output[1]
        if mask is None:
            return True, "no mask (None)"
        batch, frames = self.state.features.shape[:2]
        if tuple(mask.shape) != (batch, frames):
            return False, (
                f"feature_mask has shape {tuple(mask.shape)} but features have {batch} clips of {frames} frames; "
                f"the mask needs one entry per feature frame: shape ({batch}, {frames})"
            )
        mask = mask.detach().cpu()
        if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
            return False, f"feature_mask must hold 0/1 (or bool), got values {sorted(mask.unique().tolist())[:5]}"
        return True, f"shape {tuple(mask.shape)} matches the features"

    # -- behaviour on padded batches ------------------------------------------------------------

    def check_padding_mask(self) -> tuple[bool, str]:
        self.require("mask length")
        clips = self.probe_clips()
        audio, audio_mask = pad_batch(clips)
        try:
            output = self.encoder(audio.to(self.device), audio_mask.to(self.device))
            features, mask = unpack_output(output)
        except Exception as e:
            return False, f"encoder(audio, audio_attention_mask) on a padded batch raised {type(e).__name__}: {e}"
        if mask is not None and tuple(mask.shape) != tuple(features.shape[:2]):
            return False, (
                f"on a padded batch the feature_mask has shape {tuple(mask.shape)} but the features "
                f"{tuple(features.shape[:2])}; derive the mask from audio_attention_mask per frame"
            )
        frames = features.shape[1]
        lengths = [len(c) for c in clips]
        counts = valid_frame_counts(frames, mask, lengths, audio.shape[1])
        rows = features.detach().float().cpu()
        self.state.finite_inputs.append(("a padded batch", torch.cat([rows[i, :c] for i, c in enumerate(counts)])))
        if mask is None:
            return True, (
                "no mask (None): padded clips keep ceil(samples / padded samples * T') frames; "
                "exactness is tested by batch consistency"
            )
        longest = max(lengths)
        for n, count in zip(lengths, counts, strict=True):
            seconds = n / SAMPLE_RATE
            if n < longest and count >= frames:
                return False, (
                    f"the {seconds:.2f} s clip in a batch padded to {longest / SAMPLE_RATE:.2f} s has all "
                    f"{frames} frames marked real; set the mask to 0 for frames past each clip's end "
                    "(from audio_attention_mask.sum(1))"
                )
            if count == 0:
                return False, f"the {seconds:.2f} s clip has every frame marked as padding; mark its real frames 1"
        shown = ", ".join(f"{n / SAMPLE_RATE:.2f} s -> {c}" for n, c in zip(lengths, counts, strict=True))
        return True, f"valid frames of {frames}: {shown}"

    def check_batch_consistency(self) -> tuple[bool, str]:
        self.require("mask length")
        clips = self.probe_clips()
        try:
            batched = encode_clips(self.encoder, clips, self.device)
            single = [encode_clips(self.encoder, [clip], self.device)[0] for clip in clips]
        except Exception as e:
            return False, f"encoding the probe clips raised {type(e).__name__}: {e}"
        rtol = BATCH_RTOL[self.device.type]
        # With mask=None the frame count of a padded clip comes from the length ratio (see
        # valid_frame_counts), which may round to one frame more than the clip gives alone.
        frame_slack = 1 if self.state.output[1] is None else 0
        worst = 0.0
        for clip, b, s in zip(clips, batched, single, strict=True):
            seconds = len(clip) / SAMPLE_RATE
            if abs(b.shape[0] - s.shape[0]) > frame_slack:
                return False, (
                    f"the {seconds:.2f} s clip gives {b.shape[0]} valid frames in a padded batch but "
                    f"{s.shape[0]} alone; the number of real frames must depend only on the clip's length"
                )
            n = min(b.shape[0], s.shape[0])
            if n == 0:
                continue
            scale = max(s[:n].abs().max().item(), 1e-8)
            error = (b[:n] - s[:n]).abs().max().item()
            if not math.isfinite(error):
                raise _Skip("non-finite features; see finite output")
            if error > rtol * scale:
                return False, (
                    f"the {seconds:.2f} s clip differs between a padded batch and alone: "
                    f"max |difference| {error:.3g} = {error / scale:.3g} of its max |feature| (tolerance {rtol:g}); "
                    "honour audio_attention_mask and avoid statistics over the batch or over padding "
                    "(batch max or mean, BatchNorm, attention to padded frames)"
                )
            worst = max(worst, error / scale)
        return True, f"{len(clips)} clips equal alone and batched (max relative difference {worst:.1g} <= {rtol:g})"

    def check_finite(self) -> tuple[bool, str]:
        self.require("features 3-D")
        inputs = [(f"torch.randn{REFERENCE_BATCH}", self.state.features)]
        inputs += self.state.finite_inputs
        if not self.results["mask length"].passed:  # encode_clips cannot trim with a broken mask
            return _finite_report(inputs)
        try:
            silence = encode_clips(
                self.encoder, [np.zeros(round(SILENCE_SECONDS * SAMPLE_RATE), np.float32)], self.device
            )
            inputs.append((f"{SILENCE_SECONDS:g} s of silence", silence[0]))
        except Exception as e:
            return False, f"encoding {SILENCE_SECONDS:g} s of silence (all zeros) raised {type(e).__name__}: {e}"
        return _finite_report(inputs)

    # -- one 30 s clip: time, memory, frame rate -------------------------------------------------

    def run_long_clip(self) -> None:
        """Encode one 30 s clip at batch 1 as extraction would; record frames, seconds and memory."""
        clip = self.noise(TIMING_SECONDS, gain=0.3)
        if self.device.type == "cuda":
            self.synchronize()
            torch.cuda.reset_peak_memory_stats(self.device)
            start = time.perf_counter()
            frames = encode_clips(self.encoder, [clip], self.device)[0]
            self.synchronize()
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated(self.device)
            memory = (
                f"{_gib(peak)} GiB allocated at peak (weights included); "
                f"the challenge allows {_gib(GPU_MEMORY_LIMIT_BYTES)} GiB"
            )
            within = peak <= GPU_MEMORY_LIMIT_BYTES
        else:
            with _rss_growth() as growth:
                start = time.perf_counter()
                frames = encode_clips(self.encoder, [clip], self.device)[0]
                seconds = time.perf_counter() - start
            memory = f"process RSS grew by ~{growth[0] / 1024**2:.0f} MiB at peak (sampled; CPU, informational)"
            within = True
        self.state.timing = (frames.shape[0], seconds, memory, within)

    def check_long_clip(self) -> tuple[bool, str]:
        self.require("features 3-D", "mask length")  # encode_clips trims frames with the mask
        try:
            self.run_long_clip()
        except Exception as e:
            return False, f"encoding one {TIMING_SECONDS:g} s clip at batch 1 raised {type(e).__name__}: {e}"
        frames = self.state.timing[0]
        if frames == 0:
            return False, f"one {TIMING_SECONDS:g} s clip gave 0 valid frames"
        windows = getattr(self.encoder, "max_input_seconds", None)
        note = f" (in windows of {windows:g} s)" if windows else ""
        return True, f"{frames} frames for {TIMING_SECONDS:g} s{note}"

    def check_frame_rate(self) -> tuple[bool, str]:
        self.require("30 s clip")
        measured = self.state.timing[0] / TIMING_SECONDS
        if not hasattr(self.encoder, "frame_rate_hz"):
            return True, f"{measured:.2f} frames per second of audio (measured; frame_rate_hz not declared)"
        declared = self.encoder.frame_rate_hz
        if not isinstance(declared, int | float) or isinstance(declared, bool):
            return False, f"frame_rate_hz must be a number, got {declared!r}"
        if abs(measured - declared) > FRAME_RATE_RTOL * declared:
            return False, (
                f"frame_rate_hz declares {declared:g} Hz but one {TIMING_SECONDS:g} s clip gave "
                f"{self.state.timing[0]} frames = {measured:.2f} Hz; fix frame_rate_hz or remove it"
            )
        return True, f"{measured:.2f} Hz measured, {declared:g} Hz declared"

    def check_time(self) -> tuple[bool, str]:
        self.require("30 s clip")
        seconds = self.state.timing[1]
        speed = TIMING_SECONDS / max(seconds, 1e-9)
        return True, f"{seconds:.3f} s for one {TIMING_SECONDS:g} s clip on {self.device} ({speed:.0f}x real time)"

    def check_memory(self) -> tuple[bool, str]:
        self.require("30 s clip")
        _, _, memory, within = self.state.timing
        if not within:
            return False, memory + "; reduce the model size or use max_input_seconds windows"
        return True, memory


def _finite_report(inputs: Sequence[tuple[str, torch.Tensor]]) -> tuple[bool, str]:
    """Fail on the first input whose features hold NaN or Inf."""
    for what, features in inputs:
        n_nan = int(torch.isnan(features).sum())
        n_inf = int(torch.isinf(features).sum())
        if n_nan or n_inf:
            return False, (
                f"{n_nan} NaN and {n_inf} Inf values in the features of {what}; "
                "guard logs and divisions (clamp_min before log, add eps to norms)"
            )
    return True, "no NaN or Inf for " + ", ".join(what for what, _ in inputs)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a bare Tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__}"


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 1024**3:.2f}"


def _rss_bytes() -> int | None:
    """Resident set size of this process from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def _rss_growth(interval_s: float = 0.002) -> Iterator[list[int]]:
    """Yield a one-item list that holds, after the block, the peak RSS growth in bytes.

    Torch's CPU allocations are invisible to tracemalloc, so we sample the RSS from a thread. Off
    Linux we fall back to the growth of ru_maxrss, which misses peaks below an earlier maximum.
    """
    growth = [0]
    start = _rss_bytes()
    if start is None:
        import resource  # Unix only; needed only off Linux

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        yield growth
        growth[0] = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        return
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes() or 0)
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], _rss_bytes() or 0)
        growth[0] = peak[0] - start
