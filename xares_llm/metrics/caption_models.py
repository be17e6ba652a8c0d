"""The two models behind FENSE and DATE, run natively with transformers (no sentence-transformers).

- `SentenceEncoder`: a Sentence-BERT folder (Transformer, mean Pooling, optional Normalize), encoding
  token ids in length-sorted batches on the chosen device, optionally with per-token weights applied
  to the input word embeddings (DATE's TF-IDF weighting).
- `ErrorChecker`: fense's fluency-error detector, a BERT classifier whose last output is the error
  logit; a caption with sigmoid(logit) > 0.9 gets its score multiplied by 1 - 0.9 = 0.1.

Both follow the public reference implementation (the `mecat` package 1.1.0, ``DATE.py``) in the
details that move scores: tokenisation limits, the checker's text preprocessing and the 64/256 token
limit of its single/batched paths, mean pooling with the attention mask, and L2 normalisation.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from xares_llm.metrics.base import MetricError, MetricOptions
from xares_llm.metrics.model_files import (
    ModelFiles,
    resolve_backbone,
    resolve_echecker,
    resolve_sbert,
)

T = TypeVar("T")

ERROR_THRESHOLD = 0.9  # fense: a caption is flagged when P(error) > this
ERROR_PENALTY = 0.9  # fense: a flagged caption keeps 1 - this = 0.1 of its score
ECHECKER_MAX_TOKENS_SINGLE = 64  # fense/mecat truncate to this when scoring exactly one sentence ...
ECHECKER_MAX_TOKENS_BATCH = 256  # ... and to this in the batched path (every real test set)
BATCH_SIZE = 32  # sentences per forward pass (mecat's default; results do not depend on it)
POSITION_IDS_KEY = "encoder.embeddings.position_ids"  # stored by old transformers, rejected by current ones
_NON_WORD = re.compile(r"[^\w\s]")


def pick_device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def track(items: Iterable[T], total: int, description: str, enabled: bool) -> Iterator[T]:
    """Iterate, with a transient rich progress bar when `enabled`."""
    if not enabled:
        yield from items
        return
    from rich.progress import track as rich_track

    yield from rich_track(items, total=total, description=description, transient=True)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first, so padding costs little."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(token_ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest: ids [B, L] and attention mask [B, L] (1 = real token)."""
    width = max(len(ids) for ids in token_ids)
    ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, seq in enumerate(token_ids):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def unique_texts(texts: Sequence[str]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(distinct texts in first-seen order, index of each text among them [N], count of each [U])."""
    position: dict[str, int] = {}
    inverse = torch.tensor([position.setdefault(t, len(position)) for t in texts], dtype=torch.long)
    counts = torch.bincount(inverse, minlength=len(position))
    return list(position), inverse, counts


def _read_json(path: Path) -> dict | list:
    return json.loads(path.read_text(encoding="utf-8"))


class SentenceEncoder:
    """Sentence-BERT embeddings: transformer -> masked mean pooling -> [Normalize] -> L2 normalise."""

    def __init__(self, model_dir: Path, device: torch.device) -> None:
        from transformers import AutoModel, AutoTokenizer

        transformer_dir, self.normalize = self._read_modules(model_dir)
        st_config_file = transformer_dir / "sentence_bert_config.json"
        st_config = _read_json(st_config_file) if st_config_file.is_file() else {}
        self.tokenizer = AutoTokenizer.from_pretrained(transformer_dir)
        self.model = AutoModel.from_pretrained(transformer_dir, dtype=torch.float32).to(device).eval()
        self.device = device
        self.do_lower_case = bool(st_config.get("do_lower_case", False))
        # Like sentence-transformers: the folder's max_seq_length, else what model and tokenizer allow.
        self.max_seq_length = int(
            st_config.get("max_seq_length")
            or min(self.model.config.max_position_embeddings, self.tokenizer.model_max_length)
        )
        self.pad_id = self.tokenizer.pad_token_id
        self.cls_id = self.tokenizer.cls_token_id
        self.sep_id = self.tokenizer.sep_token_id
        self.uses_token_types = "token_type_ids" in self.tokenizer.model_input_names

    @staticmethod
    def _read_modules(model_dir: Path) -> tuple[Path, bool]:
        """(transformer folder, has Normalize) from modules.json; refuse what we do not implement."""
        modules_file = model_dir / "modules.json"
        if not modules_file.is_file():  # a plain transformers folder: sentence-transformers mean-pools it
            return model_dir, False
        transformer_dir, normalize = None, False
        for module in _read_json(modules_file):
            kind = module["type"].rsplit(".", 1)[-1]
            if kind == "Transformer":
                transformer_dir = model_dir / module.get("path", "")
            elif kind == "Pooling":
                SentenceEncoder._check_mean_pooling(model_dir / module["path"] / "config.json")
            elif kind == "Normalize":
                normalize = True
            else:
                raise MetricError(f"sbert {model_dir}: module type {module['type']!r} is not supported")
        if transformer_dir is None:
            raise MetricError(f"sbert {model_dir}: modules.json lists no Transformer module")
        return transformer_dir, normalize

    @staticmethod
    def _check_mean_pooling(config_file: Path) -> None:
        config = _read_json(config_file)
        modes = config.get("pooling_mode")
        if modes is None:
            modes = [
                k.removeprefix("pooling_mode_").removesuffix("_tokens")
                for k, v in config.items()
                if k.startswith("pooling_mode_") and v is True
            ]
        modes = [modes] if isinstance(modes, str) else list(modes)
        if modes != ["mean"]:
            raise MetricError(f"{config_file}: pooling {modes} is not supported; FENSE and DATE use mean pooling")

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, [CLS] ... [SEP], truncated to max_seq_length; no padding."""
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)
        return [list(ids) for ids in encoded["input_ids"]]

    def word_embeddings(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Rows of the input word-embedding table (no positions, no LayerNorm): [..., D] float32."""
        return self.model.get_input_embeddings()(token_ids.to(self.device))

    @torch.inference_mode()
    def embed(
        self,
        token_ids: Sequence[Sequence[int]],
        weights: Sequence[np.ndarray] | None = None,
        batch_size: int = BATCH_SIZE,
        progress: bool = False,
        description: str = "encoding",
    ) -> torch.Tensor:
        """L2-normalised sentence embeddings [N, D] float32 on the CPU.

        `weights[i]` (one per token of sentence i) scales the input word embeddings before the
        transformer, as DATE does; positions, token types and LayerNorm then apply as usual.
        """
        batches = length_sorted_batches([len(ids) for ids in token_ids], batch_size)
        out = torch.empty((len(token_ids), self.model.config.hidden_size), dtype=torch.float32)
        for batch in track(batches, len(batches), description, progress):
            ids, mask = pad_batch([token_ids[i] for i in batch], self.pad_id)
            ids, mask = ids.to(self.device), mask.to(self.device)
            inputs: dict[str, torch.Tensor] = {"attention_mask": mask}
            if self.uses_token_types:
                inputs["token_type_ids"] = torch.zeros_like(ids)
            if weights is None:
                inputs["input_ids"] = ids
            else:
                scale = torch.ones(ids.shape, dtype=torch.float32)
                for row, i in enumerate(batch):
                    scale[row, : len(weights[i])] = torch.from_numpy(np.asarray(weights[i], dtype=np.float32))
                inputs["inputs_embeds"] = self.word_embeddings(ids) * scale.to(self.device).unsqueeze(-1)
            tokens = self.model(**inputs).last_hidden_state  # [B, L, D]
            # Masked mean pooling, as sentence-transformers' Pooling computes it.
            weight = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weight).sum(dim=1) / torch.clamp(weight.sum(dim=1), min=1e-9)
            if self.normalize:
                pooled = nn.functional.normalize(pooled, p=2, dim=-1)
            out[batch] = pooled.float().cpu()
        # FENSE and DATE normalise the sentence embedding (again, when the model already did).
        return nn.functional.normalize(out, p=2, dim=-1)


class _FlatClassifier(nn.Module):
    """fense's BERTFlatClassifier: [CLS] state -> dropout -> linear; same parameter names (encoder.*, clf.*)."""

    def __init__(self, config, num_classes: int) -> None:
        from transformers import AutoModel

        super().__init__()
        # The pooler is unused ([CLS] hidden state goes straight to clf), so it is not built.
        self.encoder = AutoModel.from_config(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.clf = nn.Linear(config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.clf(self.dropout(hidden.last_hidden_state[:, 0, :]))


class ErrorChecker:
    """fense's fluency-error detector loaded from its checkpoint {model_type, num_classes, state_dict}."""

    def __init__(self, checkpoint: ModelFiles, device: torch.device) -> None:
        from transformers import AutoConfig, AutoTokenizer

        try:  # weights_only: a checkpoint may hold tensors and plain data, never code to run
            state = torch.load(checkpoint.path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise MetricError(f"{checkpoint.path}: cannot be loaded as a weights-only checkpoint ({e})") from e
        if not isinstance(state, dict) or not {"model_type", "num_classes", "state_dict"} <= state.keys():
            raise MetricError(
                f"{checkpoint.path}: not an error-checker checkpoint {{model_type, num_classes, state_dict}}"
            )
        self.model_type = str(state["model_type"])
        self.backbone_dir, self.backbone_source = resolve_backbone(self.model_type, hub_only=checkpoint.official)
        config = AutoConfig.from_pretrained(self.backbone_dir)
        self.model = _FlatClassifier(config, int(state["num_classes"]))
        weights = {
            k: v
            for k, v in state["state_dict"].items()
            if k != POSITION_IDS_KEY and not k.startswith("encoder.pooler.")
        }
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise MetricError(
                f"{checkpoint.path}: weights do not fit {self.model_type} (missing {missing[:5]}, "
                f"unexpected {unexpected[:5]})"
            )
        self.model.to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.backbone_dir)
        self.device = device

    @staticmethod
    def preprocess(text: str) -> str:
        """fense drops every non-word, non-space character and lower-cases before checking."""
        return _NON_WORD.sub("", text).lower()

    @torch.inference_mode()
    def error_probabilities(
        self, sentences: Sequence[str], max_length: int, batch_size: int = BATCH_SIZE, progress: bool = False
    ) -> torch.Tensor:
        """P(error) per sentence, [N] float32 on the CPU: sigmoid of the last logit."""
        texts = [self.preprocess(s) for s in sentences]
        token_ids = self.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        probs = torch.empty(len(texts), dtype=torch.float32)
        batches = length_sorted_batches([len(ids) for ids in token_ids], batch_size)
        for batch in track(batches, len(batches), "error checker", progress):
            ids, mask = pad_batch([token_ids[i] for i in batch], self.tokenizer.pad_token_id)
            logits = self.model(ids.to(self.device), mask.to(self.device), torch.zeros_like(ids).to(self.device))
            probs[batch] = torch.sigmoid(logits)[:, -1].float().cpu()
        return probs


@contextlib.contextmanager
def _no_load_bars() -> Iterator[None]:
    """Hide transformers' per-load progress bars (scoring has its own), restoring the setting after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=4)
def _cached_encoder(files: ModelFiles, device: str) -> SentenceEncoder:
    # Keyed by path and weights sha256, so a folder whose weights changed is loaded afresh.
    with _no_load_bars():
        return SentenceEncoder(files.path, torch.device(device))


@functools.lru_cache(maxsize=4)
def _cached_checker(files: ModelFiles, device: str) -> ErrorChecker:
    with _no_load_bars():
        return ErrorChecker(files, torch.device(device))


@dataclass
class CaptionModels:
    """The resolved encoder and checker of one scoring run, and the settings that identify them."""

    encoder: SentenceEncoder
    checker: ErrorChecker | None
    settings: dict
    progress: bool

    def penalties(self, unique_sentences: Sequence[str], n_sentences: int) -> torch.Tensor:
        """Score multipliers [U] float32: 0.1 for a flagged sentence, else 1 (all 1 without a checker).

        `n_sentences` is how many candidates the reference passes to the checker (with repeats): it
        truncates to 64 tokens when that is exactly one, else to 256.
        """
        if self.checker is None:
            return torch.ones(len(unique_sentences), dtype=torch.float32)
        max_length = ECHECKER_MAX_TOKENS_SINGLE if n_sentences == 1 else ECHECKER_MAX_TOKENS_BATCH
        probs = self.checker.error_probabilities(unique_sentences, max_length, progress=self.progress)
        flagged = torch.tensor(1 - ERROR_PENALTY, dtype=torch.float32)
        return torch.where(probs > ERROR_THRESHOLD, flagged, torch.tensor(1.0))


def load_caption_models(options: MetricOptions | None) -> CaptionModels:
    """Resolve (explicit path or env var, hub, checked download), load once per process, and describe
    the models for scores.json."""
    options = options or MetricOptions()
    device = pick_device(options.device)
    sbert = resolve_sbert(options.sbert)
    echecker = resolve_echecker(options.echecker, options.cache_dir)
    encoder = _cached_encoder(sbert, str(device))
    checker = None if echecker is None else _cached_checker(echecker, str(device))
    settings = {
        "sbert": sbert.name,
        "sbert_source": sbert.source,
        "sbert_sha256": sbert.sha256,
        "sbert_max_seq_length": encoder.max_seq_length,
        "echecker": "none" if echecker is None else echecker.name,
        "echecker_source": None if echecker is None else echecker.source,
        "echecker_sha256": None if echecker is None else echecker.sha256,
        "echecker_backbone": None if checker is None else checker.model_type,
        "error_threshold": ERROR_THRESHOLD,
        "error_penalty": ERROR_PENALTY,
        "device": str(device),
        "official": sbert.official and echecker is not None and echecker.official,
    }
    return CaptionModels(encoder=encoder, checker=checker, settings=settings, progress=options.progress)
