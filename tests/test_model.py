"""AudioLLM: sequence layout, loss masking, projector stacking, LoRA, batched generation."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from xares_llm.errors import ConfigError
from xares_llm.lalm.model import IGNORE_INDEX, AudioLLM, Batch, LinearProjector, MLPProjector
from xares_llm.lalm.recipe import ProjectorConfig, load_recipe
from xares_llm.lalm.tokenizer import byte_tokenizer, load_tokenizer
from xares_llm.lalm.train import build_model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("byte")


def tiny_recipe(**overrides):
    return load_recipe("demo", overrides)


def make_batch(tokenizer, lengths=(7, 3), dim=8, answers=("do re", "1"), prompts=("Which?", "Count.")) -> Batch:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(len(lengths), max(lengths), dim, generator=gen)
    for i, n in enumerate(lengths):
        features[i, n:] = 0
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return Batch(
        features=features,
        frame_lengths=torch.tensor(lengths),
        prompt_ids=[encode(p) for p in prompts],
        answer_ids=[encode(a) for a in answers] if answers else None,
    )


def row(batch: Batch, i: int) -> Batch:
    """Sample i of `batch` alone, its audio frames cut to its own length (no padding at all)."""
    n = int(batch.frame_lengths[i])
    return Batch(batch.features[i : i + 1, :n], batch.frame_lengths[i : i + 1], [batch.prompt_ids[i]])


def test_projector_stacks_and_pads_the_remainder():
    projector = LinearProjector(3, 4, ProjectorConfig(type="linear", stack=2))
    out = projector(torch.ones(2, 5, 3))
    assert out.shape == (2, 3, 4)
    assert projector.output_lengths(torch.tensor([5, 4, 1])).tolist() == [3, 2, 1]
    with torch.no_grad():  # the 5th frame reaches the LLM, next to zero padding
        last = projector.net(torch.cat([torch.ones(3), torch.zeros(3)]))
    torch.testing.assert_close(out[0, 2], last)


def test_mlp_projector():
    projector = MLPProjector(3, 4, ProjectorConfig(type="mlp", stack=1, hidden=6))
    assert [type(m).__name__ for m in projector.net] == ["Linear", "GELU", "Linear"]
    assert projector(torch.ones(1, 2, 3)).shape == (1, 2, 4)


def test_sequence_and_labels_follow_spec(tokenizer):
    model = build_model(tiny_recipe(projector={"type": "linear", "stack": 1}), 8, tokenizer)
    batch = make_batch(tokenizer)
    embeds, labels = model._sequences(batch, with_answer=True)
    for i, n_audio in enumerate((7, 3)):
        prompt, answer = batch.prompt_ids[i], batch.answer_ids[i]
        assert len(embeds[i]) == n_audio + len(prompt) + len(answer) + 1
        expected = [IGNORE_INDEX] * (n_audio + len(prompt)) + answer + [tokenizer.eos_token_id]
        assert labels[i].tolist() == expected
        torch.testing.assert_close(embeds[i][n_audio : n_audio + len(prompt)], model.embed_tokens(prompt, "cpu"))


def test_loss_counts_answer_and_eos_only(tokenizer):
    model = build_model(tiny_recipe(), 8, tokenizer).eval()
    batch = make_batch(tokenizer)
    result = model(batch)
    embeds, labels = model._sequences(batch, with_answer=True)
    total, count = 0.0, 0
    for i, (e, label) in enumerate(zip(embeds, labels, strict=True)):  # each sample alone: padding cannot matter
        logits = model.llm(inputs_embeds=e[None]).logits[0, :-1]
        target = label[1:]
        keep = target != IGNORE_INDEX
        row = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
        torch.testing.assert_close(result.row_loss[i], row, rtol=1e-5, atol=1e-5)
        assert int(result.row_tokens[i]) == int(keep.sum())
        total += row
        count += int(keep.sum())
    torch.testing.assert_close(result.loss, total / count, rtol=1e-5, atol=1e-5)
    assert result.tokens == sum(len(e) for e in embeds)
    # the same value transformers computes from labels, so the reference's objective is unchanged
    padded = torch.nn.utils.rnn.pad_sequence(embeds, batch_first=True)
    targets = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=IGNORE_INDEX)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(e), dtype=torch.long) for e in embeds], batch_first=True)
    reference = model.llm(inputs_embeds=padded, attention_mask=mask, labels=targets).loss
    torch.testing.assert_close(result.loss, reference, rtol=1e-6, atol=1e-6)


def test_left_padded_batched_generation_equals_single(tokenizer):
    model = build_model(tiny_recipe(), 8, tokenizer).eval()
    batch = make_batch(tokenizer)
    decoding = tiny_recipe().decoding
    together = model.generate(Batch(batch.features, batch.frame_lengths, batch.prompt_ids), decoding)
    for i in range(2):
        assert model.generate(row(batch, i), decoding)[0] == together[i]


def first_difference(a: list[int], b: list[int]) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@pytest.mark.filterwarnings("ignore:Passing `repetition_penalty` with `inputs_embeds`")
def test_repetition_penalty_batched_generation_equals_single(tokenizer):
    """Reference decoding (greedy, penalty 1.05, long answers): each left-padded row decodes as if alone.

    transformers' own penalty skips a padded row's first new tokens, one per pad, so its batched
    output drifts from its own batch-size-1 output a few tokens in.
    """
    decoding = {"max_new_tokens": 120, "repetition_penalty": 1.05}
    recipe = tiny_recipe(**{"llm.config.tie_word_embeddings": False, "decoding": decoding})
    torch.manual_seed(0)
    model = build_model(recipe, 8, tokenizer).eval()
    batch = make_batch(
        tokenizer, lengths=(17, 3, 9), answers=None, prompts=("Which?", "Count the speakers.", "Describe.")
    )
    together = model.generate(batch, recipe.decoding)
    assert all(len(tokens) == 120 for tokens in together)  # no early EOS: the whole length is compared
    for i in range(3):
        alone = model.generate(row(batch, i), recipe.decoding)[0]
        assert alone == together[i], f"row {i} drifts from token {first_difference(alone, together[i])}"
        # Alone, it is what transformers' built-in penalty gives at batch size 1 (every new token penalised).
        embeds = model._sequences(row(batch, i), with_answer=False)[0][0][None]
        builtin = model.llm.generate(
            inputs_embeds=embeds,
            attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
            max_new_tokens=120,
            do_sample=False,
            repetition_penalty=1.05,
            eos_token_id=model.eos_id,
            pad_token_id=model.pad_id,
        )
        assert builtin[0].tolist() == alone


def test_lora_freezes_the_llm(tokenizer):
    recipe = tiny_recipe(lora={"r": 4, "alpha": 8, "dropout": 0.0})
    model = build_model(recipe, 8, tokenizer)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("projector.") for n in trainable)
    assert any(n.startswith("projector.") for n in trainable)
    assert set(model.trainable_state_dict()) == set(trainable)


def test_pretrained_llm_and_tokenizer_from_a_local_folder(tmp_path, tokenizer):
    """The hub code path (from_pretrained), offline: a folder saved from a tiny config."""
    config = LlamaConfig(
        vocab_size=257,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    torch.manual_seed(1)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    byte_tokenizer().save_pretrained(tmp_path)
    recipe = load_recipe("reference", {"llm": {"name": str(tmp_path)}})
    loaded_tokenizer = load_tokenizer(str(tmp_path))
    model = AudioLLM(recipe, 8, loaded_tokenizer)
    reference = LlamaForCausalLM.from_pretrained(tmp_path)
    weight = model.llm.get_base_model().model.embed_tokens.weight
    torch.testing.assert_close(weight, reference.model.embed_tokens.weight)
    assert loaded_tokenizer.pad_token == loaded_tokenizer.eos_token  # pad = EOS, as the reference


def test_recipe_errors_name_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nllm: {name: x}\nprecision: fp8\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: field 'precision'.*'fp32', 'fp16', 'bf16' or 'auto'.*fp8"):
        load_recipe(str(path))
    with pytest.raises(ConfigError, match="set exactly one of 'name'"):
        load_recipe("demo", {"llm.name": "x"})
