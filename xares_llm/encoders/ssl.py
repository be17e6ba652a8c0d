"""`hubert-base`, `wavlm-base-plus`, `wav2vec2-base`: self-supervised speech encoders via transformers.

Batched output equals single-clip output on the real frames, for every front-end type:

- The conv feature encoder's frame count comes from the model's own
  ``_get_feat_extract_output_lengths`` (no padding in the convs, so those frames see only real
  samples). The feature mask marks exactly those frames.
- ``feat_extract_norm="group"`` models (the base checkpoints, e.g. wav2vec2-base) put a GroupNorm
  over time after the first conv, so on a padded batch every frame's statistics depend on the
  padding. The HF docs therefore say to feed them zero-padded audio *without* an attention mask,
  which still leaves the outputs batch-dependent. We instead run the conv feature encoder on each
  clip's own samples (one call per distinct length), so GroupNorm sees only real audio.
- The transformer then runs batched with a key-padding mask: padded frames are zeroed before the
  positional conv (what the conv's own zero padding gives a lone clip) and never attended to.
  ``feat_extract_norm="layer"`` models (large checkpoints) run the conv encoder batched, since a
  per-frame LayerNorm is unaffected by padding.
- Inputs are normalised per clip (zero mean, unit variance over real samples) when the checkpoint's
  ``preprocessor_config.json`` says ``do_normalize`` (True when the file is absent, the extractor's
  default), exactly as ``Wav2Vec2FeatureExtractor`` would.

Frame count for L samples (wav2vec2-style conv stack, kernels 10,3,3,3,3,2,2 and strides
5,2,2,2,2,2,2): repeatedly L <- floor((L - kernel) / stride) + 1, about 50 Hz; 0 for L < 400.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders._common import lengths_to_mask, load_failed, real_lengths, resolve_layer
from xares_llm.errors import EncoderError

NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm's variance floor


class SSLEncoder(nn.Module):
    """A wav2vec2-family model (HuBERT, WavLM, wav2vec2) loaded with ``AutoModel``.

    `model` is a hub id or a local ``save_pretrained`` directory. `layer` picks a hidden state as in
    transformers' ``hidden_states``: 0 = input of the first transformer block, n = output of block
    n, None (or the number of blocks) = the model's final output, which for pre-norm checkpoints
    (``do_stable_layer_norm``) includes the final LayerNorm. Blocks above `layer` are removed (no
    compute, not fingerprinted).
    """

    sampling_rate = SAMPLE_RATE

    def __init__(self, model: str, layer: int | None = None):
        super().__init__()
        from transformers import AutoModel

        try:
            net = AutoModel.from_pretrained(model, dtype=torch.float32)
        except (OSError, ValueError) as e:
            raise load_failed(model, e) from e
        config = net.config
        for part in ("feature_extractor", "feature_projection", "encoder"):
            if not hasattr(net, part):
                raise EncoderError(
                    f"{model!r} loads as {type(net).__name__}, which is not a wav2vec2-style model "
                    "(HuBERT, WavLM, wav2vec2, data2vec-audio); use a matching encoder instead"
                )
        if getattr(net, "adapter", None) is not None:
            raise EncoderError(f"{model!r} has an output adapter (add_adapter=True), which SSLEncoder does not support")
        encoder = net.encoder
        n_layers = len(encoder.layers)
        index = resolve_layer(layer, n_layers, f"{type(net).__name__} {model!r}")
        if index < n_layers:
            encoder.layers = encoder.layers[:index]
            if getattr(config, "do_stable_layer_norm", False):
                encoder.layer_norm = nn.Identity()  # pre-norm models apply it after the last block only
        self.net = net
        self.layer = index
        self.output_dim = int(config.hidden_size)
        self.per_clip_front_end = getattr(config, "feat_extract_norm", "group") == "group"
        self.normalize = _do_normalize(model)
        self.frame_rate_hz = SAMPLE_RATE / math.prod(config.conv_stride)
        self.min_samples = _receptive_field(list(config.conv_kernel), list(config.conv_stride))
        self.requires_grad_(False)
        self.eval()

    def frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        """lengths (B,) samples -> frames (B,), from the model's own conv arithmetic."""
        return self.net._get_feat_extract_output_lengths(lengths).long().clamp_min(0)

    def forward(
        self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, T) samples at 16 kHz -> features (B, T', hidden_size) at ~50 Hz, feature_mask (B, T') bool."""
        audio, lengths = real_lengths(audio, audio_attention_mask)
        if self.normalize:
            audio = _zero_mean_unit_var(audio, lengths)
        if audio.shape[1] < self.min_samples:  # shorter than one frame: pad so the convs run; no frame is real
            audio = nn.functional.pad(audio, (0, self.min_samples - audio.shape[1]))
        n_frames = int(self.frame_counts(torch.tensor([audio.shape[1]]))[0])
        counts = self.frame_counts(lengths)
        frame_mask = lengths_to_mask(counts, n_frames)
        extract = self._conv_features(audio, lengths, counts, n_frames).transpose(1, 2)  # (B, T', conv_dim)
        projected = self.net.feature_projection(extract)
        hidden = projected[0] if isinstance(projected, tuple) else projected  # wav2vec2/WavLM also return the input
        if bool(frame_mask.all()):
            attention_mask = None
        else:
            attention_mask = frame_mask.clone()
            attention_mask[counts == 0, 0] = True  # a row with no real frame still needs one key (no NaN)
        hidden = self.net.encoder(hidden, attention_mask=attention_mask).last_hidden_state
        return hidden, frame_mask

    def _conv_features(
        self, audio: torch.Tensor, lengths: torch.Tensor, counts: torch.Tensor, n_frames: int
    ) -> torch.Tensor:
        """audio (B, T) -> conv features (B, conv_dim, T'); GroupNorm front ends see one clip length at a time."""
        distinct = torch.unique(lengths)
        if not self.per_clip_front_end or (len(distinct) == 1 and int(distinct[0]) == audio.shape[1]):
            return self.net.feature_extractor(audio)
        out = audio.new_zeros(audio.shape[0], self.net.config.conv_dim[-1], n_frames)
        for length in distinct.tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            if int(counts[rows[0]]) == 0:
                continue  # shorter than one frame: nothing real to encode, its frames stay zero and masked
            part = self.net.feature_extractor(audio[rows, :length])  # (rows, conv_dim, frames of this length)
            out[rows, :, : part.shape[2]] = part.to(out.dtype)
        return out


def _zero_mean_unit_var(audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per clip over its real samples, padding back to 0 (Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm)."""
    mask = lengths_to_mask(lengths, audio.shape[1])
    count = lengths.clamp_min(1).to(audio.dtype)[:, None]
    mean = audio.sum(dim=1, keepdim=True) / count
    var = ((audio - mean) ** 2 * mask).sum(dim=1, keepdim=True) / count  # population variance, as numpy .var()
    return (audio - mean) / torch.sqrt(var + NORM_EPS) * mask


def _do_normalize(model: str) -> bool:
    """The checkpoint's preprocessor ``do_normalize``; True (Wav2Vec2FeatureExtractor's default) if absent."""
    path = Path(model).expanduser()
    if path.is_dir():
        config_file = path / "preprocessor_config.json"
        if not config_file.is_file():
            return True
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            config_file = Path(hf_hub_download(model, "preprocessor_config.json"))
        except EntryNotFoundError:
            return True
        except Exception as e:
            raise load_failed(model, e) from e
    return bool(json.loads(config_file.read_text(encoding="utf-8")).get("do_normalize", True))


def _receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Samples one output frame of the conv stack sees (400 for the wav2vec2 stack)."""
    field = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        field = (field - 1) * stride + kernel
    return field
