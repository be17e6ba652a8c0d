"""Audio encoders: the contract, the registry of names and the loader for user specs.

Contract (the challenge's, unchanged): an ``nn.Module`` with an int ``output_dim`` whose
``forward(audio [B, T] float 16 kHz, audio_attention_mask [B, T] or None)`` returns
``(features [B, T', D], feature_mask [B, T'] or None)``. Optional attributes we read:
``sampling_rate`` (must be 16000), ``max_input_seconds`` and ``frame_rate_hz``. See docs/encoders.md.
"""

from xares_llm.encoders.registry import ENCODERS, EncoderEntry, register_encoder

__all__ = ["ENCODERS", "EncoderEntry", "LoadedEncoder", "load_encoder", "register_encoder"]


def __getattr__(name: str):
    """The loader imports torch: only when it is asked for, so naming encoders stays light."""
    if name in ("LoadedEncoder", "load_encoder"):
        from xares_llm.encoders import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'xares_llm.encoders' has no attribute {name!r}")
