"""Small helpers shared by the built-in pretrained encoders (Whisper, SSL, Dasheng)."""

from __future__ import annotations

import torch

from xares_llm.errors import EncoderError


def real_lengths(audio: torch.Tensor, audio_attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """audio (B, T) samples, mask (B, T) 1 = real or None -> (float32 audio with padding zeroed, lengths (B,) samples).

    Zeroing what the mask calls padding makes the output independent of whatever the caller left there.
    """
    audio = audio.float()
    if audio.dim() != 2:
        raise ValueError(f"audio must be (B, T) samples at 16 kHz, got shape {tuple(audio.shape)}")
    if audio_attention_mask is None:
        return audio, torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long, device=audio.device)
    mask = audio_attention_mask.to(audio.device).bool()
    return audio * mask, mask.sum(dim=1).long()


def lengths_to_mask(lengths: torch.Tensor, n_frames: int) -> torch.Tensor:
    """lengths (B,) frames -> mask (B, n_frames) bool, True on real frames."""
    return torch.arange(n_frames, device=lengths.device)[None] < lengths[:, None]


def resolve_layer(layer: int | None, n_layers: int, what: str) -> int:
    """Map a user `layer` (None = last, negative counts from the end) to 0..n_layers.

    Layer 0 is the input to the first block (embeddings), layer n is the output of block n, and
    layer n_layers is the model's final output (after its final norm, where it has one), as in
    transformers' ``hidden_states``.
    """
    if layer is None:
        return n_layers
    index = layer + n_layers + 1 if layer < 0 else layer
    if not 0 <= index <= n_layers:
        raise EncoderError(
            f"{what} has {n_layers} layers: 'layer' must be in 0..{n_layers} "
            f"(or -{n_layers + 1}..-1 from the end), got {layer}"
        )
    return index


def load_failed(model: str, error: Exception) -> EncoderError:
    """One message for every pretrained load failure: what was asked for and how to make it available."""
    return EncoderError(
        f"cannot load pretrained weights {model!r}: {type(error).__name__}: {error}. Give a Hugging Face hub id "
        "or a local directory. Without network, pre-download on a connected machine "
        f"(`hf download {model}`) and copy the Hugging Face cache, or pass the local directory."
    )
