"""Whether the encoder behaves differently in train mode, which the reference system trains it in.

The reference's Trainer calls `model.train()` on its whole model, encoder included, before every
step: dropout is on, and BatchNorm layers normalise with the statistics of a batch of 4 padded clips
and overwrite their running statistics, which then change the features the reference evaluates on.
xares-llm keeps the encoder frozen in eval mode (the challenge's intent), so for such an encoder
its scores and the reference's can differ. This advisory check says so; it never fails an encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from xares_llm.check.context import Context, Skip
from xares_llm.encoders.encoding import pad_batch, unpack_output

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
TRAIN_RTOL = 1e-5  # train- vs eval-mode output, relative to the largest eval feature
REFERENCE_LINE = (
    "the reference system runs the encoder in train mode while training (dropout on; BatchNorm on batch-of-4 "
    "statistics that overwrite its running statistics and so change its test features); xares-llm keeps it "
    "in eval mode, so this encoder's scores may differ from the reference's"
)


def check_train_mode(ctx: Context) -> tuple[bool, str]:
    ctx.require("features 3-D")
    if not isinstance(ctx.encoder, nn.Module):
        raise Skip("not an nn.Module")
    layers = count_layers(ctx.encoder)
    difference = train_eval_difference(ctx)
    if not layers and difference <= TRAIN_RTOL:
        return True, "no BatchNorm or dropout layer; train and eval mode give the same features"
    found = ", ".join(f"{n} {kind}" for kind, n in layers.items())
    shown = f"{found}; " if found else ""
    return False, f"{shown}train-mode features differ by {difference:.3g} of the largest: {REFERENCE_LINE}"


def count_layers(module: nn.Module) -> dict[str, int]:
    """BatchNorm and dropout layers (dropout with p = 0 does nothing and is not counted)."""
    norms = sum(isinstance(m, BATCH_NORMS) for m in module.modules())
    dropouts = sum(isinstance(m, DROPOUTS) and m.p > 0 for m in module.modules())
    return {kind: n for kind, n in (("BatchNorm layers", norms), ("dropout layers", dropouts)) if n}


def train_eval_difference(ctx: Context) -> float:
    """max |train - eval| / max |eval| on the padded probe batch; the encoder's state is restored after."""
    encoder = ctx.encoder
    audio, mask = pad_batch(ctx.probe_clips())
    audio, mask = audio.to(ctx.device), mask.to(ctx.device)
    buffers = {name: b.clone() for name, b in encoder.named_buffers()}
    try:
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            evaluated = unpack_output(encoder.eval()(audio, mask))[0].float()
            trained = unpack_output(encoder.train()(audio, mask))[0].float()
    finally:
        encoder.eval()
        for name, value in buffers.items():
            encoder.get_buffer(name).copy_(value)
    if trained.shape != evaluated.shape:
        return float("inf")
    scale = max(evaluated.abs().max().item(), 1e-8)
    return (trained - evaluated).abs().max().item() / scale
