"""Tiny random stand-ins for the FENSE/DATE models, so tests and benchmarks run offline.

`write_tiny_sbert` writes a complete Sentence-BERT folder (BERT weights from a config, a WordPiece
vocabulary, modules.json, mean pooling); `write_tiny_echecker` writes a checkpoint in the fense
format {model_type, num_classes, state_dict} whose backbone is such a folder. The special tokens sit
at bert-base-uncased's ids ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103), which `mecat`
hard-codes, so the parity test can feed the same folder to both implementations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

from xares_llm.cache.atomic import atomic_file, atomic_write_text

SPECIAL_TOKEN_IDS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
FIRST_WORD_ID = 104  # words follow the special and [unused] tokens, as in bert-base-uncased
ECHECKER_CLASSES = 6  # fense's checker: 5 error types + "any error" as the last output


def write_wordpiece_vocab(path: Path, words: Iterable[str]) -> list[str]:
    """vocab.txt: special tokens at bert-base ids, [unusedN] fillers, then `words` (deduplicated)."""
    tokens = [SPECIAL_TOKEN_IDS.get(i, f"[unused{i}]") for i in range(FIRST_WORD_ID)]
    tokens += sorted({w for w in words if w not in tokens})
    atomic_write_text(path, "\n".join(tokens) + "\n")
    return tokens


def write_tiny_sbert(
    out_dir: Path,
    words: Iterable[str],
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int | None = None,
    max_seq_length: int = 128,
    normalize: bool = False,
    initializer_range: float = 0.02,
    seed: int = 0,
) -> Path:
    """A random BERT Sentence-BERT folder (Transformer + mean Pooling [+ Normalize]) in `out_dir`.

    A larger `initializer_range` (e.g. 0.5) spreads the random sentence embeddings apart, so that
    similarity and DATE's discrimination vary between captions instead of all sitting near 1.
    """
    from transformers import BertConfig, BertModel, BertTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = write_wordpiece_vocab(out_dir / "vocab.txt", words)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max(512, max_seq_length),
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(out_dir)
    vocab_ids = {token: i for i, token in enumerate(vocab)}
    BertTokenizer(vocab=vocab_ids, do_lower_case=True).save_pretrained(out_dir)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    atomic_write_text(out_dir / "modules.json", json.dumps(modules, indent=2))
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": hidden_size,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    atomic_write_text(out_dir / "1_Pooling" / "config.json", json.dumps(pooling, indent=2))
    atomic_write_text(out_dir / "sentence_bert_config.json", json.dumps({"max_seq_length": max_seq_length}))
    return out_dir


def write_tiny_echecker(
    path: Path, backbone_dir: Path, last_logit_scale: float = 1.0, last_logit_bias: float = 0.0, seed: int = 0
) -> Path:
    """A fense-format checker on `backbone_dir`; its error logit = scale * (random projection) + bias.

    scale 0 and bias +20 make it flag every caption, bias -20 none; a moderate bias flags some.
    """
    from transformers import AutoConfig

    from xares_llm.metrics.caption_models import _FlatClassifier

    torch.manual_seed(seed)
    model = _FlatClassifier(AutoConfig.from_pretrained(backbone_dir), ECHECKER_CLASSES)
    model.load_state_dict(
        {
            f"encoder.{k}": v
            for k, v in _load_backbone_weights(backbone_dir).items()
            if f"encoder.{k}" in model.state_dict()
        },
        strict=False,
    )
    with torch.no_grad():
        model.clf.weight[-1] *= last_logit_scale
        model.clf.bias[-1] = last_logit_bias
    state = {"model_type": str(backbone_dir), "num_classes": ECHECKER_CLASSES, "state_dict": model.state_dict()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        torch.save(state, f)
    return path


def _load_backbone_weights(backbone_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(backbone_dir) / "model.safetensors"))
