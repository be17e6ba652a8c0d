"""`mel`: a weight-free log-mel encoder, the offline default and a real floor for every score."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from xares_llm.constants import SAMPLE_RATE

N_FFT = 400  # samples: 25 ms window at 16 kHz
HOP_LENGTH = 160  # samples: 10 ms hop -> 100 mel frames per second
N_MELS = 80
STACK = 4  # mel frames per output frame -> 25 Hz output, D = 80 * 4 = 320
LOG_FLOOR = 1e-10  # power floor before the log; also the value of padded mel frames


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """HTK-scale triangular filters, shape (n_mels, n_fft // 2 + 1)."""

    def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (mel / 2595.0) - 1.0)

    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    hz_points = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (fft_freqs[None] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


class MelEncoder(nn.Module):
    """16 kHz log-mel (80 bins, 25 ms / 10 ms), 4 frames stacked: 25 Hz, D = 320.

    Clip i of length L_i samples gives ceil(ceil(L_i / 160) / 4) frames whatever else is in the
    batch: samples past L_i are zeroed and mel frames past the clip are set to a constant before
    stacking, so batched output equals single-clip output exactly.
    """

    sampling_rate = SAMPLE_RATE
    frame_rate_hz = SAMPLE_RATE / HOP_LENGTH / STACK

    def __init__(self, n_mels: int = N_MELS, stack: int = STACK):
        super().__init__()
        self.n_mels, self.stack = n_mels, stack
        self.output_dim = n_mels * stack
        self.frame_rate_hz = SAMPLE_RATE / HOP_LENGTH / stack
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", torch.from_numpy(mel_filterbank(n_mels)), persistent=False)

    def forward(
        self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, T) samples -> features (B, T', n_mels * stack), mask (B, T') bool."""
        audio = audio.float()
        batch, n_samples = audio.shape
        if audio_attention_mask is None:
            lengths = torch.full((batch,), n_samples, device=audio.device)
        else:
            mask = audio_attention_mask.to(audio.device).bool()
            audio = audio * mask
            lengths = mask.sum(dim=1)
        padded = nn.functional.pad(audio, (0, N_FFT))  # zeros so the last frames see silence, not wrap
        spec = torch.stft(
            padded, N_FFT, HOP_LENGTH, window=self.window, center=False, return_complex=True
        )  # (B, 201, frames)
        n_mel_frames = math.ceil(n_samples / HOP_LENGTH)
        power = spec[..., :n_mel_frames].abs() ** 2
        mel = torch.log10((self.filters @ power).clamp_min(LOG_FLOOR)).transpose(1, 2)  # (B, frames, mels)
        mel_lengths = torch.div(lengths + HOP_LENGTH - 1, HOP_LENGTH, rounding_mode="floor")
        frame_index = torch.arange(n_mel_frames, device=audio.device)
        mel = mel.masked_fill((frame_index[None] >= mel_lengths[:, None])[..., None], math.log10(LOG_FLOOR))
        out_frames = math.ceil(n_mel_frames / self.stack)
        mel = nn.functional.pad(mel, (0, 0, 0, out_frames * self.stack - n_mel_frames), value=math.log10(LOG_FLOOR))
        features = (mel.reshape(batch, out_frames, self.output_dim) + 4.0) / 4.0  # roughly zero-centred
        out_lengths = torch.div(mel_lengths + self.stack - 1, self.stack, rounding_mode="floor")
        feature_mask = torch.arange(out_frames, device=audio.device)[None] < out_lengths[:, None]
        return features, feature_mask
