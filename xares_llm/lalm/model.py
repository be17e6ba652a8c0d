"""AudioLLM: cached encoder frames -> projector -> causal LM (+ LoRA), sequence and loss as the reference system's
(docs/reference-parity.md).

Training sequence per sample, right-padded in the batch::

    [audio tokens][prompt tokens][answer tokens][EOS][pad ...]
    labels: -100 on audio, prompt and padding; the token ids on answer + EOS

Generation input, left-padded so every row ends where decoding starts::

    [pad ...][audio tokens][prompt tokens] -> greedy

The encoder is never part of this model: stage two reads features only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.generation import LogitsProcessor, LogitsProcessorList

from xares_llm.lalm.recipe import PROJECTORS, DecodingConfig, LoRAConfig, ProjectorConfig, Recipe

IGNORE_INDEX = -100  # label value the cross-entropy skips


class Projector(nn.Module):
    """Encoder frames (B, T, D) -> LLM embeddings (B, ceil(T / stack), H).

    ``stack`` concatenates consecutive frames; a remainder is zero-padded rather than dropped, so
    the last frames of a clip always reach the LLM. Subclasses choose the network on the stacked
    frames. A plugin projector is any module built as ``cls(input_dim, llm_dim, config)`` with this
    `output_lengths` and `forward`.
    """

    def __init__(self, input_dim: int, llm_dim: int, config: ProjectorConfig):
        super().__init__()
        self.stack = config.stack
        self.net = self.build(input_dim * config.stack, llm_dim, config)

    def build(self, width: int, llm_dim: int, config: ProjectorConfig) -> nn.Module:
        raise NotImplementedError

    def output_lengths(self, frames: torch.Tensor) -> torch.Tensor:
        """Audio tokens per clip for (B,) valid frame counts."""
        return torch.div(frames + self.stack - 1, self.stack, rounding_mode="floor")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, frames, dim = features.shape
        tokens = math.ceil(frames / self.stack)
        features = nn.functional.pad(features, (0, 0, 0, tokens * self.stack - frames))
        return self.net(features.reshape(batch, tokens, dim * self.stack))


class LinearProjector(Projector):
    """One linear layer, as the reference system."""

    def build(self, width: int, llm_dim: int, config: ProjectorConfig) -> nn.Module:
        return nn.Linear(width, llm_dim)


class MLPProjector(Projector):
    """Linear, GELU, linear; the hidden width defaults to the LLM's."""

    def build(self, width: int, llm_dim: int, config: ProjectorConfig) -> nn.Module:
        hidden = config.hidden or llm_dim
        return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, llm_dim))


@dataclass
class Batch:
    """Model inputs for one batch; audio frames padded on the right, lengths in frames."""

    features: torch.Tensor  # (B, T, D) float
    frame_lengths: torch.Tensor  # (B,) int64
    prompt_ids: list[list[int]]
    answer_ids: list[list[int]] | None = None  # training only: answer tokens without EOS
    tasks: list[str] | None = None  # task name of each row, for messages

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.features.to(device), self.frame_lengths.to(device), self.prompt_ids, self.answer_ids, self.tasks
        )


class TrainLoss(NamedTuple):
    """A training forward's result: the loss to minimise, and per row the summed answer-token loss and
    the number of answer tokens (per-task losses in the log are ratios of their sums)."""

    loss: torch.Tensor
    row_loss: torch.Tensor  # (B,) detached
    row_tokens: torch.Tensor  # (B,) int64
    tokens: int  # LLM input positions in the batch (audio + prompt + answer), for tokens per second


def build_llm(recipe: Recipe) -> PreTrainedModel:
    """The recipe's causal LM: pretrained (hub id or local dir) or random-init from its config."""
    if recipe.llm.name is not None:
        return AutoModelForCausalLM.from_pretrained(recipe.llm.name, revision=recipe.llm.revision, dtype=torch.float32)
    config = dict(recipe.llm.config)
    config = AutoConfig.for_model(config.pop("model_type"), **config)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def apply_lora(llm: PreTrainedModel, lora: LoRAConfig) -> nn.Module:
    """Freeze the LLM and add LoRA adapters (all linear layers, no bias, as the reference)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(llm, config)


class GeneratedTokensPenalty(LogitsProcessor):
    """The CTRL repetition penalty on the tokens each row has generated so far, whatever its padding.

    Generating from inputs_embeds, transformers tracks only the new tokens; its own penalty (5.x)
    also skips as many of them as the row has left pads, so a padded row in a batch is penalised later
    than the same row alone and the two outputs drift apart. This one treats every row as batch size 1.
    """

    def __init__(self, penalty: float):
        self.penalty = penalty

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        seen = scores.gather(1, input_ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter(1, input_ids, seen)


class AudioLLM(nn.Module):
    def __init__(self, recipe: Recipe, input_dim: int, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        llm = build_llm(recipe)
        self.llm = apply_lora(llm, recipe.lora) if recipe.lora is not None else llm
        self.projector = PROJECTORS.get(recipe.projector.type)(input_dim, llm.config.hidden_size, recipe.projector)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the weights that training changes (projector, LoRA or the full LLM)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {n: t for n, t in self.state_dict().items() if n in names}

    def embed_tokens(self, ids: list[int], device: torch.device) -> torch.Tensor:
        table = self.llm.get_input_embeddings()
        return table(torch.tensor(ids, dtype=torch.long, device=device))

    def _sequences(self, batch: Batch, with_answer: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per sample: input embeddings (L_i, H) and labels (L_i,)."""
        audio = self.projector(batch.features)
        audio_lengths = self.projector.output_lengths(batch.frame_lengths).tolist()
        device = audio.device
        embeds, labels = [], []
        for i, prompt in enumerate(batch.prompt_ids):
            parts = [audio[i, : audio_lengths[i]], self.embed_tokens(prompt, device)]
            label = [IGNORE_INDEX] * (audio_lengths[i] + len(prompt))
            if with_answer:
                answer = [*batch.answer_ids[i], self.eos_id]
                parts.append(self.embed_tokens(answer, device))
                label += answer
            embeds.append(torch.cat(parts))
            labels.append(torch.tensor(label, dtype=torch.long, device=device))
        return embeds, labels

    def forward(self, batch: Batch) -> TrainLoss:
        """Mean cross-entropy over answer + EOS tokens of the batch, and each row's share of it."""
        embeds, labels = self._sequences(batch, with_answer=True)
        longest = max(len(e) for e in embeds)
        hidden = embeds[0].shape[1]
        inputs = embeds[0].new_zeros(len(embeds), longest, hidden)
        targets = torch.full((len(embeds), longest), IGNORE_INDEX, dtype=torch.long, device=inputs.device)
        attention = torch.zeros(len(embeds), longest, dtype=torch.long, device=inputs.device)
        for i, (e, label) in enumerate(zip(embeds, labels, strict=True)):
            inputs[i, : len(e)] = e
            targets[i, : len(e)] = label
            attention[i, : len(e)] = 1
        logits = self.llm(inputs_embeds=inputs, attention_mask=attention).logits
        # the causal-LM loss transformers computes from `labels`: token t predicts label t + 1, in fp32
        shifted = targets[:, 1:]
        token_loss = nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), shifted, ignore_index=IGNORE_INDEX, reduction="none"
        )
        row_tokens = (shifted != IGNORE_INDEX).sum(dim=1)
        row_loss = token_loss.sum(dim=1)
        tokens = sum(len(e) for e in embeds)  # known on the host: no device sync in the training step
        return TrainLoss(row_loss.sum() / row_tokens.sum(), row_loss.detach(), row_tokens, tokens)

    @torch.no_grad()
    def generate(self, batch: Batch, decoding: DecodingConfig) -> list[list[int]]:
        """Greedy decoding from left-padded [audio][prompt]; returns new token ids up to EOS.

        Each row decodes exactly as it would alone: padding changes neither attention nor the penalty.
        """
        embeds, _ = self._sequences(batch, with_answer=False)
        longest = max(len(e) for e in embeds)
        pad_embed = self.embed_tokens([self.pad_id], embeds[0].device)[0]
        inputs = pad_embed.expand(len(embeds), longest, -1).clone()
        attention = torch.zeros(len(embeds), longest, dtype=torch.long, device=inputs.device)
        for i, e in enumerate(embeds):
            inputs[i, longest - len(e) :] = e
            attention[i, longest - len(e) :] = 1
        output = self.llm.generate(
            inputs_embeds=inputs,
            attention_mask=attention,
            max_new_tokens=decoding.max_new_tokens,
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,  # transformers' own would skip a left-padded row's first tokens
            logits_processor=LogitsProcessorList([GeneratedTokensPenalty(decoding.repetition_penalty)]),
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
        )
        results = []
        for row in output.tolist():  # with inputs_embeds, generate returns only the new tokens
            results.append(row[: row.index(self.eos_id)] if self.eos_id in row else row)
        return results
