"""Reference parity of what defines a score: prompts, targets, sampling, optimiser and schedule, comparability."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xares_llm.cache import FeatureSplit, PartBuffer, SourceInfo, write_part
from xares_llm.cache.format import split_dir
from xares_llm.cli.console import out
from xares_llm.cli.main import app
from xares_llm.config import packaged_names
from xares_llm.lalm.recipe import load_recipe
from xares_llm.lalm.sampler import MixtureSampler
from xares_llm.lalm.train import lr_lambda, parameter_groups
from xares_llm.scoring.reference import PROMPTS, SINGLE_TASK_STEPS, differences
from xares_llm.tasks.data import read_targets
from xares_llm.tasks.schema import filter_reason, load_task, targets

OFFICIAL = sorted(PROMPTS)

# The reference system's instruction strings, as published with its task configs.
REFERENCE_PROMPTS = {
    "esc50": "Classify the environmental sound.",
    "speechcommandsv1": "Classify the keyword.",
    "fluentspeechcommands": "Identify the command, action, and object from the speech.",
    "fsdkaggle2018": "Multi-label classification for FSDKaggle2018",
    "voxceleb1": "Are the two speakers the same or different?",
    "nsynth": "Classify the music instrument.",
    "cremad": "Identify the emotion expressed in the speech.",
    "asvspoof2015": "Detect if the audio is genuine or a spoof.",
    "freemusicarchive": "Classify the music genre (FMA).",
    "fsd50k": "Multi-label classification for FSD50k",
    "urbansound8k": "Classify the urban sound.",
    "gtzan": "Classify the music genre (GTZAN).",
    "vocalsound": "Classify the vocal sound.",
    "libricount": "Count the amount of speakers.",
    "voxlingua33": "Classify the language.",
    "aishell1": "Transcribe the Chinese speech into text.",
    "songdescriber": "Generate a caption for the music",
    "clotho": "Generate a short caption for the audio.",
    "librispeech": "Transcribe the English speech into text",
    "mecat": "Write a general audiocaption.",
}


def test_every_official_task_uses_the_reference_prompt_verbatim():
    assert PROMPTS == REFERENCE_PROMPTS
    official = [n for n in packaged_names("tasks") if not n.startswith("demo_")]
    assert sorted(official) == OFFICIAL
    for name in official:
        task = load_task(name)
        assert task.prompt == REFERENCE_PROMPTS[name], name
        assert task.version >= 2 and task.filter_targets, name


def test_tasks_prompts_lists_the_twenty_prompts(monkeypatch):
    monkeypatch.setattr(out, "_width", 200)
    result = CliRunner().invoke(app, ["tasks", "--prompts"])
    assert result.exit_code == 0, result.output
    for name, prompt in REFERENCE_PROMPTS.items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert f'"{prompt}"' in line, line


@pytest.mark.parametrize("text", ["?", "--", "甚 至 出 现 。", "hahahahahaha", "a\u0301e\u0302i\u0303o\u0304u\u0305x"])
def test_reference_filter_drops(text):
    assert filter_reason(text) is not None


@pytest.mark.parametrize("text", ["a b", "N/A", "(laughs)", "甚 至 出 现", "", "dog", "hello world"])
def test_reference_filter_keeps(text):
    assert filter_reason(text) is None


def test_label_values_have_one_behaviour_each():
    keys = ["label"]
    assert targets({"label": "dog"}, keys).texts == ["dog"]
    assert targets({"label": 7}, keys).texts == ["7"]
    assert targets({"label": True}, keys).texts == ["True"]
    assert targets({"label": ["a", "", 3]}, keys).texts == ["a", "", "3"]  # "" inside a list: an empty target
    found = targets({"label": ["a", {"x": 1}, ["b"]]}, keys)
    assert found.texts == ["a"] and found.unusable == 2
    assert targets({"label": "", "text": "fallback"}, keys).texts == [""]  # "" is a target: the search stops
    assert targets({"label": None, "text": "fallback"}, keys).texts == ["fallback"]  # null: the next key
    assert targets({"label": [], "text": "fallback"}, keys).texts == ["fallback"]  # []: the next key
    assert targets({"label": {"x": 1}, "caption": "c"}, keys).texts == ["c"]  # a mapping: the next key
    assert targets({"label": ""}, keys).texts == [""]
    assert load_task("esc50").split_targets({"label": ""}, "test").texts == [""]  # the filter keeps it
    assert targets({}, keys).texts == []


def test_filter_is_a_task_switch_on_for_official_tasks_only():
    meta = {"text": "--", "caption": "unused"}
    official, demo = load_task("clotho"), load_task("demo_pitch")
    assert official.filter_targets and not demo.filter_targets
    found = official.split_targets({"caption": ["a dog barks", "--", "?"]}, "test")
    assert found.texts == ["a dog barks"] and found.filtered == 2
    assert demo.split_targets({"note": "--"}, "test").texts == ["--"]
    assert official.split_targets(meta, "train").texts == []


def write_split(root, encoder_id, dataset, sizes, meta_of) -> FeatureSplit:
    """One part per entry of `sizes`, each clip 3 frames of dim 2, its meta from `meta_of(part, clip)`."""
    directory = split_dir(root, encoder_id, dataset, "train")
    for p, size in enumerate(sizes):
        buffer = PartBuffer(dim=2, dtype="float32")
        for c in range(size):
            buffer.add(f"p{p}c{c}", np.full((3, 2), p, dtype=np.float32), meta_of(p, c), 4800)
        write_part(directory / f"part-{p}.zarr", buffer, SourceInfo(f"{p}.tar", 1, f"{p:02d}", 0))
    return FeatureSplit(root, encoder_id, dataset, "train")


def test_targets_and_counts_of_a_split(tmp_path):
    import json

    labels = ["dog", "--", "", "hahahahahaha", "cat"]
    store = write_split(tmp_path, "enc", "esc50", [5], lambda p, c: json.dumps({"label": labels[c]}))
    split = read_targets(load_task("esc50"), store, "train")
    assert split.targets == ["dog", "", "cat"]
    assert split.counts.to_dict() == {
        "clips": 5, "targets": 3, "filtered": 2, "unusable": 0, "unlabelled": 2, "dropped": 0, "dropped_scored": 0,
        "left_out": {},
    }  # fmt: skip


def test_within_a_task_draws_follow_the_references_whole_shard_reads(tmp_path):
    """The reference resamples shards uniformly and reads each drawn shard whole, so in the long run a shard
    yields its share of the (clip, target) pairs: a 10-clip part beside a 190-clip part gets about 5 %."""
    import json

    store = write_split(tmp_path, "enc", "esc50", [10, 190], lambda p, c: json.dumps({"label": "dog"}))
    split = read_targets(load_task("esc50"), store, "train")
    sampler = MixtureSampler([split], [1.0], window_frames=3, batch_size=50, seed=0)
    parts = [int(store.frames(int(split.clip_index[e.pair]))[0, 0]) for s in range(200) for e in sampler.examples(s)]
    share = parts.count(0) / len(parts)
    assert abs(share - 10 / 200) < 0.01  # 10 000 draws; shard-uniform would give 0.5


def test_schedule_warms_up_from_zero_and_decays_to_zero():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(200, 1000))
    seen = []
    for _ in range(1000):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[:3] == pytest.approx([0.0, 1e-4 / 200, 2e-4 / 200])
    assert seen[200] == pytest.approx(1e-4) and seen[-1] == pytest.approx(1e-4 / 800)
    assert optimizer.param_groups[0]["lr"] == 0.0  # after the last update


def test_no_weight_decay_on_biases_and_norm_weights():
    from xares_llm.lalm.checkpoints import build_model
    from xares_llm.lalm.tokenizer import load_tokenizer

    model = build_model(load_recipe("demo"), 8, load_tokenizer("byte"))
    decay, no_decay = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert "projector.net.0.bias" in skipped and "llm.model.norm.weight" in skipped
    assert any("input_layernorm" in n for n in skipped)
    assert all(names[id(p)].endswith("weight") and "norm" not in names[id(p)] for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == sum(p.requires_grad for p in model.parameters())


def reference_run(**changes):
    settings = {
        "recipe": load_recipe("reference"),
        "mixture": "task1",
        "train_tasks": [n for n in OFFICIAL if load_task(n).track == "A"],
        "prompts": dict(PROMPTS),
        "filter_targets": dict.fromkeys(PROMPTS, True),
        "encoder_precision": "fp32",
        "steps_done": 100_000,
    }
    return differences(**{**settings, **changes})


def test_only_the_reference_settings_are_comparable():
    assert reference_run() == []
    assert reference_run(recipe=load_recipe("t4")) == ["recipe precision: fp16 (reference: fp32)"]
    assert reference_run(encoder_precision="fp16") == ["encoder precision: fp16 (reference: fp32)"]
    assert reference_run(encoder_resampler="soxr") == ["resampler: soxr (reference: sinc)"]
    assert reference_run(encoder_resampler=None)[0].startswith("resampler: not recorded")
    assert reference_run(steps_done=10) == ["unfinished: 10 of 100000 steps trained"]
    changed = reference_run(prompts={**PROMPTS, "esc50": "Classify the environmental sound. "})
    assert len(changed) == 1 and changed[0].startswith("task esc50: prompt")
    assert reference_run(filter_targets={**dict.fromkeys(PROMPTS, True), "gtzan": False}) == [
        "task gtzan: target filter off (reference: on)"
    ]
    single = load_recipe("reference", {"steps": SINGLE_TASK_STEPS["esc50"]})
    assert reference_run(recipe=single, mixture="esc50", train_tasks=["esc50"], steps_done=2000) == []
    assert reference_run(mixture="esc50", train_tasks=["esc50"]) == ["steps: 100000 (reference: 2000)"]
    demo = reference_run(recipe=load_recipe("demo"), mixture="demo", train_tasks=["demo_pitch"], steps_done=1200)
    assert any(line.startswith("recipe llm") for line in demo)


class NoMaskEncoder(torch.nn.Module):
    """Mean of every 160 samples, and no mask: the padded batch's padding frames look real."""

    output_dim = 1

    def forward(self, audio, audio_attention_mask=None):
        return audio.reshape(audio.shape[0], -1, 160).mean(dim=2, keepdim=True), None


def test_mask_none_encoders_keep_only_real_frames():
    from xares_llm.encoders.encoding import encode_clips

    clips = [np.ones(1600, dtype=np.float32), np.full(3200, 2.0, dtype=np.float32)]
    batched = encode_clips(NoMaskEncoder(), clips)
    assert [len(f) for f in batched] == [10, 20]  # not 20 and 20: the padding frames are gone
    for clip, frames in zip(clips, batched, strict=True):
        assert frames.equal(encode_clips(NoMaskEncoder(), [clip])[0])


class WindowedNoMask(torch.nn.Module):
    """25 ms windows every 10 ms (T' = (n - 400) // 160 + 1, not proportional to n), no mask; each frame
    sums its window, so a frame over padding differs from a frame over audio."""

    output_dim = 1

    def forward(self, audio, audio_attention_mask=None):
        return audio.unfold(1, 400, 160).sum(dim=2, keepdim=True), None


def test_mask_none_frames_depend_on_the_clip_only():
    from xares_llm.encoders.encoding import encode_clips

    rng = np.random.default_rng(0)
    clip = rng.uniform(0.5, 1, 16_720).astype(np.float32)  # alone: (16720 - 400) // 160 + 1 = 103 frames
    alone = encode_clips(WindowedNoMask(), [clip])[0]
    assert len(alone) == 103
    others = [rng.uniform(0.5, 1, n).astype(np.float32) for n in (16_000, 17_000, 32_000, 16_720)]
    for batch in ([clip, others[0]], [others[1], clip], [others[2], clip, others[0]], [clip, others[3], others[1]]):
        encoded = encode_clips(WindowedNoMask(), batch)
        for frames, member in zip(encoded, batch, strict=True):
            assert frames.shape == ((len(member) - 400) // 160 + 1, 1)  # 103 for the clip, never 104 or 105
        mine = next(f for f, m in zip(encoded, batch, strict=True) if m is clip)
        np.testing.assert_allclose(mine, alone, rtol=1e-6)


def test_training_windows_are_frame_crops(tmp_path):
    """A clip longer than the window gives windows of exactly window_frames at varying starts."""
    import json

    directory = split_dir(tmp_path, "enc", "esc50", "train")
    buffer = PartBuffer(dim=1, dtype="float32")
    buffer.add("long", np.arange(100, dtype=np.float32)[:, None], json.dumps({"label": "dog"}), 16000)
    write_part(directory / "part-0.zarr", buffer, SourceInfo("0.tar", 1, "00", 0))
    split = read_targets(load_task("esc50"), FeatureSplit(tmp_path, "enc", "esc50", "train"), "train")
    sampler = MixtureSampler([split], [1.0], window_frames=30, batch_size=4, seed=0)
    examples = [e for step in range(16) for e in sampler.examples(step)]
    assert {e.stop - e.start for e in examples} == {30}
    assert len({e.start for e in examples}) > 10 and all(0 <= e.start <= 70 for e in examples)


def test_accuracy_compares_strings_as_they_are_even_ending_in_nul():
    """The reference's scikit-learn accuracy goes through numpy string arrays, which drop a trailing NUL;
    we compare the strings (docs/reference-parity.md): only such strings can differ."""
    from xares_llm.metrics.classification import accuracy

    assert accuracy(["dog\x00"], [["dog"]]).score == 0.0
    assert np.array(["dog\x00"])[0] == "dog"  # what the reference's comparison sees
    assert accuracy(["Dog."], [["dog"]]).score == 1.0
