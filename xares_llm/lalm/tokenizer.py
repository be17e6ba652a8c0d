"""Tokenizers: the LLM's own (hub or local dir), or a byte-level one built in-process for the demo."""

from __future__ import annotations

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

BYTE_EOS = "<eos>"  # the byte tokenizer's only special token (id 256)


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """256 byte tokens + EOS, no merges: any UTF-8 text round-trips, nothing is downloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)} | {BYTE_EOS: len(alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=BYTE_EOS)


def load_tokenizer(source: str, revision: str | None = None) -> PreTrainedTokenizerBase:
    """``"byte"``, a saved tokenizer dir, or a hub id; pad = EOS when the tokenizer has none, as the reference."""
    tokenizer = byte_tokenizer() if source == "byte" else AutoTokenizer.from_pretrained(source, revision=revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
