"""Encoder spec strings: every form resolves to the same class; bad specs say what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xares_llm.encoders import load_encoder
from xares_llm.encoders.mel import MelEncoder
from xares_llm.errors import EncoderError

FIXTURES = Path(__file__).parent / "fixtures" / "encoders"


@pytest.mark.parametrize("spec", ["mel", "xares_llm.encoders.mel:MelEncoder", "xares_llm.encoders.mel.MelEncoder"])
def test_builtin_and_module_forms(spec):
    loaded = load_encoder(spec, '{"n_mels": 40}')
    assert isinstance(loaded.module, MelEncoder) and loaded.module.output_dim == 160
    assert loaded.kwargs == {"n_mels": 40}


def test_file_forms_relative_and_absolute(monkeypatch):
    absolute = load_encoder(str(FIXTURES / "minimal.py"))
    monkeypatch.chdir(FIXTURES.parent)
    relative = load_encoder(os.path.join("encoders", "minimal.py"))
    named = load_encoder("encoders/pair.py:WideEncoder")
    assert type(absolute.module).__name__ == type(relative.module).__name__ == "MinimalEncoder"
    assert type(named.module).__name__ == "WideEncoder" and named.slug == "wide-encoder"
    assert absolute.source_text == (FIXTURES / "minimal.py").read_text()


def test_several_candidates_without_a_name_are_listed():
    with pytest.raises(EncoderError, match=r"found: MinimalEncoder, WideEncoder.*pair.py:MinimalEncoder"):
        load_encoder(str(FIXTURES / "pair.py"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mle", "Did you mean mel"),
        ("missing/file.py", "encoder file not found"),
        ("xares_llm.nothing:Encoder", "cannot import module 'xares_llm.nothing'"),
        ("xares_llm.encoders.mel:Nope", "has no class 'Nope'"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(EncoderError, match=message):
        load_encoder(spec)


def test_bad_kwargs():
    with pytest.raises(EncoderError, match="not valid JSON"):
        load_encoder("mel", "{n_mels: 40")
    with pytest.raises(EncoderError, match="must be a JSON object"):
        load_encoder("mel", "[1]")
    with pytest.raises(EncoderError, match="unexpected keyword argument 'bins'"):
        load_encoder("mel", {"bins": 3})
