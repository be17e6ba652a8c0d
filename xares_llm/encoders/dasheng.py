"""`dasheng-base|0.6b|1.2b`: the Dasheng audio transformer, our own code, loading the published weights.

The organisers' `dasheng` package (0.0.9) depends on torchaudio, which this project must not install,
so the model is re-implemented here: same module names (the checkpoints load unchanged), the same
torchaudio front end rewritten in plain torch, and the same inference path as
``dasheng.pretrained.Dasheng.forward`` in 0.0.9 (patches split into chunks of ``target_length / 4``
patches, the last chunk shorter, each chunk encoded alone with positions restarting at 0).

Front end (torchaudio ``MelSpectrogram`` + ``AmplitudeToDB(top_db=120)``): 512-point STFT with a
512-sample Hann window, hop 160 samples (10 ms), reflect-padded centre frames, power, 64 HTK mel
bands 0-8 kHz, 10 log10, floor at (max - 120 dB); then a BatchNorm over mel bands and a 64 x 4
patch conv, so one output frame = 4 mel frames = 40 ms (25 Hz).

Frame count for a clip of L samples: (1 + L // 160) // 4, what Dasheng gives that clip alone
(0 for clips under 480 samples). Batched output equals single-clip output on those frames: each
row is reflect-padded at its own end (not the batch's), its dB floor uses its own maximum
(torchaudio takes the whole batch's), and attention never looks at another row's padding.

Weights: the hub repos ``mispeech/dasheng-{base,0.6B,1.2B}`` (``config.json`` + ``model.safetensors``
with ``encoder.``-prefixed keys, the HF port's layout), a local directory in that layout, or the
package's original ``.pt`` dump (``{"model": state_dict, "config": kwargs}``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from xares_llm.cache.atomic import atomic_file, atomic_write_text
from xares_llm.constants import SAMPLE_RATE
from xares_llm.encoders._common import lengths_to_mask, load_failed, real_lengths, resolve_layer
from xares_llm.errors import EncoderError

HUB_IDS = {  # short names -> the organisers' hub repos
    "dasheng-base": "mispeech/dasheng-base",
    "dasheng-0.6b": "mispeech/dasheng-0.6B",
    "dasheng-1.2b": "mispeech/dasheng-1.2B",
}
HEADS_BY_WIDTH = {768: 12, 1280: 16, 1536: 24}  # the released models; the package's .pt dumps omit num_heads
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # hub layout, newest first
TOP_DB = 120.0  # dB: AmplitudeToDB(top_db=120) floor below the clip's maximum
AMIN = 1e-10  # power floor before the log (torchaudio's amin)
LN_EPS = 1e-6  # LayerNorm eps of every Dasheng norm


@dataclass
class DashengConfig:
    """Architecture and front end; defaults are Dasheng-base and the 0.0.9 package's front end."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    init_values: float | None = None  # LayerScale init; None = no LayerScale (all released models)
    target_length: int = 1008  # mel frames per attention chunk: 10.08 s
    patch_size: tuple[int, int] = (64, 4)  # (mel bands, mel frames) per patch
    patch_stride: tuple[int, int] = (64, 4)
    n_mels: int = 64
    n_fft: int = 512  # samples
    win_size: int = 512  # samples
    hop_size: int = 160  # samples: 10 ms
    f_min: float = 0.0  # Hz
    f_max: float = 8000.0  # Hz

    @classmethod
    def from_dict(cls, values: dict) -> DashengConfig:
        """Keep the keys we model, ignore training-only ones (pooling, eval_avg, loss, ...)."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known and v is not None}
        for key in ("patch_size", "patch_stride"):
            if key in kwargs:
                value = kwargs[key]
                kwargs[key] = tuple(value) if isinstance(value, list | tuple) else (value, value)
        config = cls(**kwargs)
        if config.patch_size != config.patch_stride or config.patch_size[0] != config.n_mels:
            raise EncoderError(
                f"Dasheng config with patch_size {config.patch_size}, patch_stride {config.patch_stride} and "
                f"n_mels {config.n_mels} is not supported: one patch must span all mel bands without overlap"
            )
        return config


class Block(nn.Module):
    """Pre-norm transformer block; attributes named as in the checkpoints (norm1, attn.qkv, mlp.fc1, ...)."""

    def __init__(self, config: DashengConfig):
        super().__init__()
        dim, hidden = config.embed_dim, int(config.embed_dim * config.mlp_ratio)
        self.num_heads = config.num_heads
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim, bias=config.qkv_bias)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.act = nn.GELU()
        self.mlp.fc2 = nn.Linear(hidden, dim)
        if config.init_values:
            self.ls1 = _LayerScale(dim, config.init_values)
            self.ls2 = _LayerScale(dim, config.init_values)
        else:
            self.ls1 = self.ls2 = nn.Identity()

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x (N, tokens, D), key_mask (N, tokens) bool True = may be attended -> (N, tokens, D)."""
        n, tokens, dim = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(n, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (N, heads, tokens, head_dim)
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        x = x + self.ls1(self.attn.proj(attended.transpose(1, 2).reshape(n, tokens, dim)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _LayerScale(nn.Module):
    def __init__(self, dim: int, init_values: float):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class DashengModel(nn.Module):
    """Dasheng's encoder from mel-dB input to tokens; `depth` blocks kept, `final_norm` optional."""

    def __init__(self, config: DashengConfig, depth: int | None = None, final_norm: bool = True):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.chunk_patches = config.target_length // config.patch_stride[1]  # 252 patches = 10.08 s
        self.init_bn = nn.BatchNorm1d(config.n_mels, momentum=0.01)  # over mel bands, as BatchNorm2d on (b f c t)
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, dim, kernel_size=config.patch_size, stride=config.patch_stride)
        self.time_pos_embed = nn.Parameter(torch.randn(1, dim, 1, self.chunk_patches) * 0.02)
        self.freq_pos_embed = nn.Parameter(torch.randn(1, dim, config.n_mels // config.patch_stride[0], 1) * 0.02)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth if depth is None else depth))
        self.norm = nn.LayerNorm(dim, eps=LN_EPS) if final_norm else nn.Identity()

    def forward(self, mel_db: torch.Tensor, n_patches: torch.Tensor) -> torch.Tensor:
        """mel_db (B, n_mels, frames) dB, n_patches (B,) real patches -> tokens (B, frames // 4, D)."""
        x = self.patch_embed.proj(self.init_bn(mel_db)[:, None])  # (B, D, 1, P)
        batch, dim, _, total = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, P, D)
        n_chunks = max(1, math.ceil(total / self.chunk_patches))
        padded = n_chunks * self.chunk_patches
        x = nn.functional.pad(x, (0, 0, 0, padded - total))
        x = x.reshape(batch * n_chunks, self.chunk_patches, dim)  # each chunk attends within itself only
        x = x + self.time_pos_embed[0, :, 0].T + self.freq_pos_embed[0, :, 0, 0]
        key_mask = lengths_to_mask(n_patches, padded).reshape(batch * n_chunks, self.chunk_patches)
        key_mask[:, 0] |= ~key_mask.any(dim=1)  # chunks past a clip's end: one key avoids NaN, output unused
        for block in self.blocks:
            x = block(x, key_mask)
        x = self.norm(x)
        return x.reshape(batch, padded, dim)[:, :total]


class MelFrontEnd(nn.Module):
    """torchaudio's MelSpectrogram + AmplitudeToDB(top_db=120) in plain torch, per clip on a padded batch."""

    def __init__(self, config: DashengConfig):
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self.n_fft, self.hop, self.pad = config.n_fft, config.hop_size, config.n_fft // 2
        filters = mel_filter_bank(
            num_frequency_bins=config.n_fft // 2 + 1,
            num_mel_filters=config.n_mels,
            min_frequency=config.f_min,
            max_frequency=config.f_max,
            sampling_rate=SAMPLE_RATE,
            norm=None,
            mel_scale="htk",
        )  # torchaudio.functional.melscale_fbanks's triangles, (n_freqs, n_mels)
        self.register_buffer("filters", torch.from_numpy(filters.T.copy()).float(), persistent=False)
        window = torch.hann_window(config.win_size)
        left = (config.n_fft - config.win_size) // 2  # torch.stft centres a shorter window in n_fft
        window = nn.functional.pad(window, (left, config.n_fft - config.win_size - left))
        self.register_buffer("window", window, persistent=False)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """audio (B, T) samples, lengths (B,) samples -> mel dB (B, n_mels, 1 + T // hop).

        Frame k of row i equals that clip's own frame k for k <= L_i // hop: each row is reflect-padded
        about its own last sample, as torch.stft(center=True) pads a lone clip.
        """
        with torch.autocast(device_type=audio.device.type, enabled=False):
            audio = audio.float()
            position = torch.arange(audio.shape[1] + 2 * self.pad, device=audio.device) - self.pad  # (T + n_fft,)
            last = (lengths - 1).clamp_min(0)[:, None]
            index = position[None].abs()  # reflect at the start
            index = torch.where(index > last, 2 * last - index, index).clamp(min=0)  # reflect at each clip's end
            index = torch.minimum(index, last)
            padded = torch.gather(audio, 1, index)
            spec = torch.stft(
                padded, self.n_fft, self.hop, window=self.window, center=False, return_complex=True
            )  # (B, n_freqs, 1 + T // hop)
            mel_db = 10.0 * torch.log10((self.filters @ spec.abs().pow(2)).clamp_min(AMIN))
            real = lengths_to_mask(1 + torch.div(lengths, self.hop, rounding_mode="floor"), mel_db.shape[-1])
            peak = mel_db.masked_fill(~real[:, None], -torch.inf).amax(dim=(1, 2), keepdim=True)
            return torch.maximum(mel_db, peak - TOP_DB)


class DashengEncoder(nn.Module):
    """Dasheng (hub id, alias such as ``dasheng-base``, local directory or original ``.pt``) at 25 Hz.

    `layer` picks a hidden state: 0 = patch embeddings + positions, n = output of block n, None (or
    depth) = the final output after the last LayerNorm. Blocks above `layer` are not built.
    """

    sampling_rate = SAMPLE_RATE

    def __init__(self, model: str = "mispeech/dasheng-base", layer: int | None = None):
        super().__init__()
        config, state = load_checkpoint(model)
        index = resolve_layer(layer, config.depth, f"Dasheng {model!r}")
        self.front_end = MelFrontEnd(config)
        self.model = DashengModel(config, depth=index, final_norm=index == config.depth)
        missing, unexpected = self.model.load_state_dict(_kept(state, index, config.depth), strict=False)
        if missing or unexpected:
            raise EncoderError(
                f"Dasheng weights {model!r} do not match the architecture from its config: "
                f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
            )
        self.layer = index
        self.output_dim = config.embed_dim
        self.samples_per_frame = config.hop_size * config.patch_stride[1]  # 640 samples = 40 ms
        self.frame_rate_hz = SAMPLE_RATE / self.samples_per_frame
        self.requires_grad_(False)
        self.eval()

    def frame_counts(self, lengths: torch.Tensor) -> torch.Tensor:
        """lengths (B,) samples -> frames (B,): (1 + L // hop) // 4."""
        mel_frames = 1 + torch.div(lengths, self.front_end.hop, rounding_mode="floor")
        return torch.div(mel_frames, self.model.config.patch_stride[1], rounding_mode="floor")

    def forward(
        self, audio: torch.Tensor, audio_attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, T) samples at 16 kHz -> features (B, T', D) at 25 Hz, feature_mask (B, T') bool."""
        audio, lengths = real_lengths(audio, audio_attention_mask)
        counts = self.frame_counts(lengths)
        min_samples = self.front_end.hop * (self.model.config.patch_stride[1] - 1)  # 480: one patch of mel frames
        if audio.shape[1] < min_samples:  # so the patch conv runs; such rows have no real frame
            audio = nn.functional.pad(audio, (0, min_samples - audio.shape[1]))
        mel_db = self.front_end(audio, lengths)
        features = self.model(mel_db, counts)
        return features, lengths_to_mask(counts, features.shape[1])


def load_checkpoint(model: str) -> tuple[DashengConfig, dict[str, torch.Tensor]]:
    """Config and state dict (our key names) from a hub id, an alias, a local directory or a ``.pt`` dump."""
    source = HUB_IDS.get(model, model)
    path = Path(source).expanduser()
    try:
        if path.is_file():  # the dasheng package's own dump
            dump = torch.load(path, map_location="cpu", weights_only=True)
            state = _our_keys(dump["model"])
            values = dict(dump.get("config", {}))
            width = state["patch_embed.proj.weight"].shape[0]
            values["num_heads"] = HEADS_BY_WIDTH.get(width, values.get("num_heads"))
        else:
            if not path.is_dir():
                path = _download(source)
            config_json = json.loads((path / "config.json").read_text(encoding="utf-8"))
            values = {**config_json, **config_json.get("encoder_kwargs", {})}
            weights = next((path / name for name in WEIGHT_FILES if (path / name).is_file()), None)
            if weights is None:
                raise FileNotFoundError(f"no {' or '.join(WEIGHT_FILES)} in {path}")
            if weights.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = _our_keys(load_file(weights))
            else:
                state = _our_keys(torch.load(weights, map_location="cpu", weights_only=True))
        facts = _shape_facts(state)
    except KeyError as e:
        raise EncoderError(f"{source} is not a Dasheng checkpoint: it has no {e.args[0]!r}") from e
    except Exception as e:
        raise load_failed(source, e) from e
    if values.get("pooling") == "token" or "cls_token" in state:
        raise EncoderError(f"Dasheng {source!r} uses a CLS token (pooling='token'), which is not supported")
    return DashengConfig.from_dict({**values, **facts}), state


def _shape_facts(state: dict[str, torch.Tensor]) -> dict:
    """What the weights themselves say about the architecture; it wins over any config."""
    width = state["patch_embed.proj.weight"].shape[0]
    facts = {
        "embed_dim": width,
        "depth": len({key.split(".")[1] for key in state if key.startswith("blocks.")}),
        "n_mels": state["init_bn.weight"].shape[0],
        "target_length": state["time_pos_embed"].shape[-1] * state["patch_embed.proj.weight"].shape[-1],
        "mlp_ratio": state["blocks.0.mlp.fc1.weight"].shape[0] / width if "blocks.0.mlp.fc1.weight" in state else 4.0,
        "qkv_bias": "blocks.0.attn.qkv.bias" in state,
    }
    if "blocks.0.ls1.gamma" in state:
        facts["init_values"] = 1.0  # LayerScale present; its values come from the weights
    return facts


def save_checkpoint(model: DashengModel, directory: str | Path) -> Path:
    """Write `model` in the hub layout (config.json + model.safetensors, ``encoder.`` keys); for tests and ports."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "dasheng", "architectures": ["DashengModel"], "encoder_kwargs": asdict(model.config)}
    atomic_write_text(directory / "config.json", json.dumps(config, indent=2))
    state = {
        "encoder." + key.replace("init_bn.", "init_bn.1.", 1): tensor.contiguous()
        for key, tensor in model.state_dict().items()
    }
    with atomic_file(directory / "model.safetensors") as f:
        f.write(save(state))
    return directory


def _download(repo_id: str) -> Path:
    """config.json and the first weight file the hub repo has, through the Hugging Face cache."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    config_file = Path(hf_hub_download(repo_id, "config.json"))
    for name in WEIGHT_FILES:
        try:
            hf_hub_download(repo_id, name)
            return config_file.parent
        except EntryNotFoundError:
            continue
    raise FileNotFoundError(f"hub repo {repo_id} has none of {', '.join(WEIGHT_FILES)}")


def _our_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint keys -> ours: drop the ``encoder.`` prefix (HF port), torchaudio's ``front_end.*``
    buffers (we rebuild them), and the Rearrange wrapper index of ``init_bn.1.*``."""
    ours = {}
    for key, tensor in state.items():
        key = key.removeprefix("encoder.")
        if not key.startswith("front_end."):
            ours[key.replace("init_bn.1.", "init_bn.", 1)] = tensor
    return ours


def _kept(state: dict[str, torch.Tensor], depth: int, full_depth: int) -> dict[str, torch.Tensor]:
    """The weights of the first `depth` blocks (+ the final norm only when all blocks are kept)."""
    dropped = tuple(f"blocks.{i}." for i in range(depth, full_depth)) + (() if depth == full_depth else ("norm.",))
    return {k: v for k, v in state.items() if not k.startswith(dropped)}
