"""Encoder names: the built-ins and plugins, as lazy ``"module:Class"`` targets (imports nothing heavy,
so the CLI can list the names in its help)."""

from __future__ import annotations

from dataclasses import dataclass, field

from xares_llm.registry import Registry


@dataclass(frozen=True)
class EncoderEntry:
    """A named encoder: its class as ``"module:Class"`` and the kwargs the name stands for."""

    target: str
    defaults: dict = field(default_factory=dict)


# Built-ins, plus plugins from the ``xares_llm.encoders`` entry-point group (an entry point names a class).
ENCODERS: Registry[EncoderEntry | type] = Registry("encoder", "xares_llm.encoders")


def register_encoder(name: str, target: str, **default_kwargs: object) -> None:
    """Register an encoder name for a ``"module:Class"`` with default kwargs; duplicate names are refused."""
    ENCODERS.register(name, EncoderEntry(target, default_kwargs))


register_encoder("mel", "xares_llm.encoders.mel:MelEncoder")
for _size in ("tiny", "base", "small", "medium", "large-v3"):
    register_encoder(f"whisper-{_size}", "xares_llm.encoders.whisper:WhisperEncoder", model=f"openai/whisper-{_size}")
for _size, _repo in (("base", "dasheng-base"), ("0.6b", "dasheng-0.6B"), ("1.2b", "dasheng-1.2B")):
    register_encoder(f"dasheng-{_size}", "xares_llm.encoders.dasheng:DashengEncoder", model=f"mispeech/{_repo}")
register_encoder("hubert-base", "xares_llm.encoders.ssl:SSLEncoder", model="facebook/hubert-base-ls960")
register_encoder("wavlm-base-plus", "xares_llm.encoders.ssl:SSLEncoder", model="microsoft/wavlm-base-plus")
register_encoder("wav2vec2-base", "xares_llm.encoders.ssl:SSLEncoder", model="facebook/wav2vec2-base")
