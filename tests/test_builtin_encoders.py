"""Built-in pretrained encoders on tiny random checkpoints saved to disk: frame counts, masks, layers,
batched == single, and agreement with the reference implementations (transformers, Dasheng 0.0.9 math).

Nothing touches the network: every model is built from a tiny config, saved with `save_pretrained`
(or Dasheng's hub layout) and loaded by path.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders import load_encoder
from xares_llm.encoders.encoding import encode_clips
from xares_llm.errors import EncoderError

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # float32 tolerance between batched and single-clip runs (different padding, same math)


def _clips(*seconds: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(round(s * SAMPLE_RATE))).astype(np.float32) for s in seconds]


def _assert_batched_equals_single(encoder: torch.nn.Module, clips: list[np.ndarray]) -> None:
    batched = encode_clips(encoder, clips)
    for clip, frames in zip(clips, batched, strict=True):
        alone = encode_clips(encoder, [clip])[0]
        assert frames.shape == alone.shape
        torch.testing.assert_close(frames, alone, atol=TOL, rtol=TOL)


# --- Whisper ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    config = transformers.WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=16,
        encoder_layers=3,
        encoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=32,
        max_source_positions=1500,  # 30 s windows, as every real Whisper
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("whisper-tiny")
    transformers.WhisperModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def whisper(whisper_dir):
    return load_encoder("whisper-base", {"model": str(whisper_dir)}).module


def test_whisper_frame_counts_are_exact(whisper):
    frames = encode_clips(whisper, _clips(1.0, 12.3, 30.0, 45.0))
    assert [f.shape[0] for f in frames] == [50, 615, 1500, 2250]  # 50 Hz, not the reference's first half
    assert all(f.shape[1] == whisper.output_dim == 16 for f in frames)
    assert whisper.max_input_seconds == 30.0 and whisper.frame_rate_hz == 50.0


def test_whisper_direct_call_windows_long_audio(whisper):
    """Called without encoding.py's windowing, a 45 s row still gives 1500 + 750 frames, as a prefix."""
    long, short = _clips(45.0, 1.0)
    audio = torch.zeros(2, len(long))
    audio[0], audio[1, : len(short)] = torch.from_numpy(long), torch.from_numpy(short)
    mask = torch.zeros(2, len(long), dtype=torch.long)
    mask[0], mask[1, : len(short)] = 1, 1
    with torch.inference_mode():
        features, feature_mask = whisper(audio, mask)
    assert feature_mask.sum(dim=1).tolist() == [2250, 50]
    assert feature_mask[1, :50].all() and not feature_mask[1, 50:].any()
    torch.testing.assert_close(features[0], encode_clips(whisper, [long])[0], atol=TOL, rtol=TOL)


def test_whisper_batched_equals_single(whisper):
    _assert_batched_equals_single(whisper, _clips(1.0, 12.3, 0.01, 31.0))


def test_whisper_log_mel_and_output_match_transformers(whisper, whisper_dir):
    clip = _clips(12.3)[0]
    extractor = transformers.WhisperFeatureExtractor(feature_size=80)
    reference_mel = torch.from_numpy(extractor(clip, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features)
    padded = torch.nn.functional.pad(torch.from_numpy(clip), (0, 30 * SAMPLE_RATE - len(clip)))[None]
    torch.testing.assert_close(whisper.log_mel(padded), reference_mel, atol=1e-5, rtol=1e-5)
    model = transformers.WhisperModel.from_pretrained(whisper_dir).eval()
    with torch.inference_mode():
        reference = model.encoder(reference_mel).last_hidden_state[0, :615]
    torch.testing.assert_close(encode_clips(whisper, [clip])[0], reference, atol=TOL, rtol=TOL)


def test_whisper_layer_selects_hidden_state(whisper_dir):
    clip = _clips(2.0)[0]
    extractor = transformers.WhisperFeatureExtractor(feature_size=80)
    mel = torch.from_numpy(extractor(clip, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features)
    model = transformers.WhisperModel.from_pretrained(whisper_dir).eval()
    with torch.inference_mode():
        hidden = model.encoder(mel, output_hidden_states=True).hidden_states
    for layer in (0, 1, 2, -2):
        from xares_llm.encoders.whisper import WhisperEncoder

        encoder = WhisperEncoder(str(whisper_dir), layer=layer)
        assert len(encoder.encoder.layers) == layer % 4  # blocks above `layer` are gone
        torch.testing.assert_close(encode_clips(encoder, [clip])[0], hidden[layer][0, :100], atol=TOL, rtol=TOL)
    with pytest.raises(EncoderError, match=r"0\.\.3"):
        WhisperEncoder(str(whisper_dir), layer=4)


# --- HuBERT / WavLM / wav2vec2 ---------------------------------------------------------------------

SSL_TINY = dict(
    hidden_size=16,
    num_hidden_layers=3,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8, 8, 8, 8, 8, 8, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    vocab_size=8,
)
SSL_CASES = {
    "hubert": ("HubertConfig", "HubertModel", {}),
    "wavlm": ("WavLMConfig", "WavLMModel", {"num_buckets": 16, "max_bucket_distance": 64}),
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model", {}),  # feat_extract_norm="group", as wav2vec2-base
    "wav2vec2-layernorm": (
        "Wav2Vec2Config",
        "Wav2Vec2Model",
        {"feat_extract_norm": "layer", "do_stable_layer_norm": True},
    ),
}


@pytest.fixture(scope="module", params=sorted(SSL_CASES))
def ssl_case(request, tmp_path_factory):
    config_name, model_name, extra = SSL_CASES[request.param]
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(getattr(transformers, config_name)(**SSL_TINY, **extra))
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path)
    from xares_llm.encoders.ssl import SSLEncoder

    return SSLEncoder(str(path)), model.eval(), path


def test_ssl_frame_counts_equal_the_models_own(ssl_case):
    encoder, model, _ = ssl_case
    clips = _clips(1.0, 0.771, 0.024, 0.025, 0.4)  # 0.024 s = 384 samples < one 400-sample frame
    expected = [int(model._get_feat_extract_output_lengths(torch.tensor(len(c)))) for c in clips]
    assert [f.shape[0] for f in encode_clips(encoder, clips)] == [max(0, n) for n in expected]
    assert expected[0] == 49 and encoder.frame_rate_hz == 50.0


def test_ssl_batched_equals_single(ssl_case):
    _assert_batched_equals_single(ssl_case[0], _clips(1.0, 0.771, 0.4, 0.024))


def test_ssl_single_clip_matches_transformers(ssl_case):
    encoder, model, _ = ssl_case
    clip = torch.from_numpy(_clips(0.8)[0])[None]
    normalised = (clip - clip.mean()) / torch.sqrt(clip.var(unbiased=False) + 1e-7)  # do_normalize default
    with torch.inference_mode():
        reference = model(normalised).last_hidden_state[0]
    torch.testing.assert_close(encode_clips(encoder, [clip[0].numpy()])[0], reference, atol=TOL, rtol=TOL)


def test_ssl_layer_selects_hidden_state(ssl_case):
    from xares_llm.encoders.ssl import SSLEncoder

    _, model, path = ssl_case
    clip = torch.from_numpy(_clips(0.8)[0])[None]
    normalised = (clip - clip.mean()) / torch.sqrt(clip.var(unbiased=False) + 1e-7)
    with torch.inference_mode():
        hidden = model(normalised, output_hidden_states=True).hidden_states
    for layer in (0, 2, -2):
        encoder = SSLEncoder(str(path), layer=layer)
        assert len(encoder.net.encoder.layers) == layer % 4
        torch.testing.assert_close(encode_clips(encoder, [clip[0].numpy()])[0], hidden[layer][0], atol=TOL, rtol=TOL)


# --- Dasheng ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dasheng_dir(tmp_path_factory):
    from xares_llm.encoders.dasheng import DashengConfig, DashengModel, save_checkpoint

    torch.manual_seed(0)
    model = DashengModel(DashengConfig(embed_dim=32, depth=2, num_heads=4, target_length=40))  # 0.4 s chunks
    with torch.no_grad():  # a trained-looking BatchNorm, so the front end's scale matters
        model.init_bn.running_mean.uniform_(-40.0, 0.0)
        model.init_bn.running_var.uniform_(50.0, 200.0)
    return save_checkpoint(model, tmp_path_factory.mktemp("dasheng-tiny"))


@pytest.fixture(scope="module")
def dasheng(dasheng_dir):
    return load_encoder("dasheng-base", {"model": str(dasheng_dir)}).module


def test_dasheng_frame_counts(dasheng):
    seconds = (1.0, 0.7716, 0.03, 0.0299, 2.5)  # 2.5 s spans several 0.4 s attention chunks
    frames = encode_clips(dasheng, _clips(*seconds))
    expected = [(1 + round(s * SAMPLE_RATE) // 160) // 4 for s in seconds]
    assert [f.shape[0] for f in frames] == expected == [25, 19, 1, 0, 62]
    assert dasheng.frame_rate_hz == 25.0 and dasheng.output_dim == 32


def test_dasheng_batched_equals_single(dasheng):
    clips = _clips(1.0, 0.7716, 2.5, 0.03)
    clips[1][4000:] = 0.0  # digital silence next to a loud clip: each clip's dB floor is its own max - 120
    clips[2] *= 30.0
    _assert_batched_equals_single(dasheng, clips)


def test_dasheng_front_end_matches_torchaudio_recipe(dasheng):
    """Row-wise reflect padding and per-clip top_db equal torch.stft(center=True) on the lone clip."""
    clip = torch.from_numpy(_clips(0.7716)[0])
    power = torch.stft(clip, 512, 160, window=torch.hann_window(512), center=True, return_complex=True).abs() ** 2
    mel_db = 10 * torch.log10((dasheng.front_end.filters @ power).clamp_min(1e-10))
    expected = torch.maximum(mel_db, mel_db.max() - 120.0)
    batch = torch.nn.functional.pad(clip, (0, 5000))[None]
    ours = dasheng.front_end(batch, torch.tensor([len(clip)]))[0, :, : expected.shape[1]]
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-5)


def test_dasheng_transformer_matches_chunked_reference(dasheng):
    """Dasheng 0.0.9's path written out: patches split into chunks, each attended alone, positions from 0."""
    model, clip = dasheng.model, torch.from_numpy(_clips(2.5)[0])[None]
    with torch.inference_mode():
        mel = dasheng.front_end(clip, torch.tensor([clip.shape[1]]))
        patches = model.patch_embed.proj(model.init_bn(mel)[:, None]).flatten(2).transpose(1, 2)[0]
        outputs = []
        for chunk in patches.split(model.chunk_patches):
            x = chunk + model.time_pos_embed[0, :, 0, : len(chunk)].T + model.freq_pos_embed[0, :, 0, 0]
            for block in model.blocks:
                q, k, v = block.attn.qkv(block.norm1(x)).reshape(len(x), 3, 4, 8).permute(1, 2, 0, 3)
                attention = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1) @ v
                x = x + block.attn.proj(attention.transpose(0, 1).reshape(len(x), 32))
                x = x + block.mlp(block.norm2(x))
            outputs.append(model.norm(x))
    torch.testing.assert_close(encode_clips(dasheng, [clip[0].numpy()])[0], torch.cat(outputs), atol=TOL, rtol=TOL)


def test_dasheng_loads_the_packages_original_dump(dasheng, dasheng_dir, tmp_path):
    """The dasheng package's .pt layout (init_bn.1.*, torchaudio front_end buffers) loads to the same model."""
    from xares_llm.encoders.dasheng import DashengEncoder

    state = {k.replace("init_bn.", "init_bn.1.", 1): v for k, v in dasheng.model.state_dict().items()}
    state["front_end.0.mel_scale.fb"] = torch.zeros(257, 64)
    config = {"embed_dim": 32, "depth": 2, "num_heads": 4, "target_length": 40, "patch_size": [64, 4]}
    torch.save({"model": state, "config": config}, tmp_path / "dasheng_tiny.pt")
    original = DashengEncoder(str(tmp_path / "dasheng_tiny.pt"))
    clip = _clips(1.3)[0]
    torch.testing.assert_close(encode_clips(original, [clip])[0], encode_clips(dasheng, [clip])[0])


def test_dasheng_layer(dasheng_dir):
    from xares_llm.encoders.dasheng import DashengEncoder

    clip = _clips(0.3)[0]  # 7 patches: one attention chunk
    full = DashengEncoder(str(dasheng_dir))
    first = DashengEncoder(str(dasheng_dir), layer=1)
    assert len(first.model.blocks) == 1 and isinstance(first.model.norm, torch.nn.Identity)
    with torch.inference_mode():  # block 1's output, before the final norm, is what layer=1 returns
        mel = full.front_end(torch.from_numpy(clip)[None], torch.tensor([len(clip)]))
        patches = full.model.patch_embed.proj(full.model.init_bn(mel)[:, None]).flatten(2).transpose(1, 2)
        x = patches + full.model.time_pos_embed[0, :, 0, : patches.shape[1]].T + full.model.freq_pos_embed[0, :, 0, 0]
        expected = full.model.blocks[0](x, torch.ones(x.shape[:2], dtype=torch.bool))[0]
    torch.testing.assert_close(encode_clips(first, [clip])[0], expected, atol=TOL, rtol=TOL)
    torch.testing.assert_close(
        encode_clips(DashengEncoder(str(dasheng_dir), layer=-1), [clip])[0], encode_clips(full, [clip])[0]
    )
    with pytest.raises(EncoderError, match=r"0\.\.2"):
        DashengEncoder(str(dasheng_dir), layer=3)


# --- all built-ins ---------------------------------------------------------------------------------


def test_encoders_are_frozen_deterministic_and_fingerprintable(whisper, dasheng, ssl_case, whisper_dir):
    from xares_llm.encoders.whisper import WhisperEncoder

    clip = _clips(0.9)
    for encoder in (whisper, dasheng, ssl_case[0]):
        assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
        assert len(list(encoder.parameters())) > 0
        torch.testing.assert_close(encode_clips(encoder, clip)[0], encode_clips(encoder, clip)[0], atol=0, rtol=0)
        before = {k: v.clone() for k, v in encoder.state_dict().items()}
        encode_clips(encoder, clip)
        after = encoder.state_dict()
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    again = WhisperEncoder(str(whisper_dir))  # a second load gives the very same tensors
    assert all(
        torch.equal(a, b) for a, b in zip(whisper.state_dict().values(), again.state_dict().values(), strict=True)
    )


def test_missing_weights_give_a_clear_error(tmp_path):
    from xares_llm.encoders.dasheng import DashengEncoder

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match="cannot load pretrained weights"):
        DashengEncoder(str(tmp_path))
    with pytest.raises(EncoderError, match="cannot load pretrained weights"):
        load_encoder("whisper-tiny", {"model": str(tmp_path / "nowhere")})


def test_xares_check_passes_on_a_tiny_whisper(whisper_dir, monkeypatch):
    import re

    from typer.testing import CliRunner

    from xares_llm.cli.console import out
    from xares_llm.cli.main import app

    monkeypatch.setattr(out, "_width", 400)  # one table row per line
    result = CliRunner().invoke(
        app, ["check", "whisper-base", "--encoder-args", json.dumps({"model": str(whisper_dir)})]
    )
    assert result.exit_code == 0, result.output
    assert "all mandatory checks passed" in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 4}
    assert "valid frames cover ~100% of the clip" in rows["coverage"]  # all 1500 frames of 30 s, not the first half
    assert float(re.search(r"~([\d.]+) MiB at peak", rows["peak memory"]).group(1)) > 0
