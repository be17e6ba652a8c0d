"""Audio encoders: the contract, the built-in registry and the loader for user specs.

Contract (the challenge's, unchanged): an ``nn.Module`` with an int ``output_dim`` whose
``forward(audio [B, T] float 16 kHz, audio_attention_mask [B, T] or None)`` returns
``(features [B, T', D], feature_mask [B, T'] or None)``. Optional attributes we read:
``sampling_rate`` (must be 16000), ``max_input_seconds`` and ``frame_rate_hz``.
"""

from xares_llm.encoders.loader import ENCODERS, LoadedEncoder, load_encoder, register_encoder

__all__ = ["ENCODERS", "LoadedEncoder", "load_encoder", "register_encoder"]
