"""`whisper-*`: the Whisper encoder over 30 s windows, returning exactly the frames of real audio.

Whisper's encoder only accepts 3000 mel frames (30 s) and was trained on clips zero-padded to 30 s,
without an attention mask. So every window is padded to 30 s and encoded whole; the frames past the
clip end are computed (they are part of what Whisper sees) and then dropped by the feature mask.
Each batch row is therefore encoded exactly as it would be alone: batched output equals single-clip
output. A 1 s clip costs as much as a 30 s one; that is Whisper's design, not ours.

Frame count for a clip of L samples: ceil(L / 320) frames at 50 Hz (one mel frame per 160 samples
whose centre lies in the clip, then the stride-2 conv). A 12.3 s clip gives 615 frames (the
reference system keeps only the first half). Longer clips are cut into 30 s windows, by
`xares_llm.encoders.encoding` through `max_input_seconds` or here when called directly, and their frames
concatenated: 45 s gives 1500 + 750 = 2250 frames.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders._common import lengths_to_mask, load_failed, real_lengths, resolve_layer

N_FFT = 400  # samples: 25 ms STFT window (Whisper)
HOP_LENGTH = 160  # samples: 10 ms hop -> 100 mel frames per second
LOG_RANGE = 8.0  # log10 units: Whisper clamps the log-mel to (max - 8) of its 30 s input
MEL_FLOOR = 1e-10  # power floor before the log


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder (transformers) with Whisper's log-mel computed batched in torch.

    `model` is a hub id (``openai/whisper-base``) or a local directory written by ``save_pretrained``.
    `layer` picks a hidden state: 0 = conv + positional embedding, n = output of block n, None (or
    the number of blocks) = the final output after the encoder's layer norm. Blocks above `layer`
    are removed, so they cost nothing and are not part of the fingerprint.
    """

    sampling_rate = SAMPLE_RATE
    pads_to_max = True  # every window is encoded as 30 s: extraction budgets batches by that

    def __init__(self, model: str = "openai/whisper-base", layer: int | None = None):
        super().__init__()
        from transformers import WhisperModel
        from transformers.audio_utils import mel_filter_bank

        try:
            whisper = WhisperModel.from_pretrained(model, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise load_failed(model, e) from e
        encoder = whisper.get_encoder()
        del whisper  # the decoder is never used; free it
        n_layers = len(encoder.layers)
        index = resolve_layer(layer, n_layers, f"Whisper encoder {model!r}")
        if index < n_layers:
            encoder.layers = encoder.layers[:index]
            encoder.layer_norm = nn.Identity()  # hidden_states[index] is taken before the final norm
        self.encoder = encoder
        self.layer = index
        self.output_dim = int(encoder.config.d_model)
        self.n_mels = int(encoder.config.num_mel_bins)
        conv_stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]  # mel frames per output frame (2)
        self.n_mel_frames = int(encoder.config.max_source_positions) * conv_stride  # 3000 for every Whisper
        self.n_out_frames = int(encoder.config.max_source_positions)  # 1500 per window
        self.samples_per_frame = HOP_LENGTH * conv_stride  # 320 samples = 20 ms
        self.window_samples = self.n_mel_frames * HOP_LENGTH  # 480 000 samples = 30 s
        self.max_input_seconds = self.window_samples / SAMPLE_RATE
        self.frame_rate_hz = SAMPLE_RATE / self.samples_per_frame
        filters = mel_filter_bank(
            num_frequency_bins=1 + N_FFT // 2,
            num_mel_filters=self.n_mels,
            min_frequency=0.0,
            max_frequency=8000.0,
            sampling_rate=SAMPLE_RATE,
            norm="slaney",
            mel_scale="slaney",
        )  # the WhisperFeatureExtractor's filters, shape (201, n_mels)
        self.register_buffer("mel_filters", torch.from_numpy(filters.T.copy()).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def log_mel(self, windows: torch.Tensor) -> torch.Tensor:
        """windows (N, 480000) samples -> log-mel (N, n_mels, 3000), as WhisperFeatureExtractor computes it."""
        with torch.autocast(device_type=windows.device.type, enabled=False):
            stft = torch.stft(windows.float(), N_FFT, HOP_LENGTH, window=self.window, return_complex=True)
            power = stft[..., :-1].abs() ** 2  # (N, 201, 3000): Whisper drops the last frame
            log_spec = (self.mel_filters @ power).clamp_min(MEL_FLOOR).log10()
            peak = log_spec.amax(dim=(1, 2), keepdim=True)
            return (torch.maximum(log_spec, peak - LOG_RANGE) + 4.0) / 4.0

    def frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        """lengths (B,) samples of one window -> frames (B,) of real audio: ceil(L / 320)."""
        return torch.div(lengths + self.samples_per_frame - 1, self.samples_per_frame, rounding_mode="floor")

    def forward(
        self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, T) samples at 16 kHz -> features (B, T', d_model) at 50 Hz, feature_mask (B, T') bool.

        Row i has ceil(L_i / 320) real frames per full or partial 30 s window, always a prefix of the
        row; T' is the longest row's count.
        """
        audio, lengths = real_lengths(audio, audio_attention_mask)
        batch, n_samples = audio.shape
        n_windows = max(1, math.ceil(n_samples / self.window_samples))
        audio = nn.functional.pad(audio, (0, n_windows * self.window_samples - n_samples))
        windows = audio.reshape(batch * n_windows, self.window_samples)
        starts = torch.arange(n_windows, device=audio.device) * self.window_samples
        window_lengths = (lengths[:, None] - starts[None]).clamp(0, self.window_samples).reshape(-1)
        active = window_lengths > 0  # windows wholly past a clip's end are not encoded
        if not bool(active.any()):
            active[0] = True  # an all-padding batch still yields a well-formed (empty-masked) output
        hidden = self.encoder(self.log_mel(windows[active])).last_hidden_state  # (n_active, 1500, D)
        features = hidden.new_zeros(batch * n_windows, self.n_out_frames, self.output_dim)
        features[active] = hidden
        frame_mask = lengths_to_mask(self.frame_counts(window_lengths), self.n_out_frames)
        features = features.reshape(batch, n_windows * self.n_out_frames, self.output_dim)
        frame_mask = frame_mask.reshape(batch, n_windows * self.n_out_frames)
        n_keep = max(1, int(frame_mask.sum(dim=1).max()))  # real frames are a prefix: drop the all-padding tail
        return features[:, :n_keep], frame_mask[:, :n_keep]
