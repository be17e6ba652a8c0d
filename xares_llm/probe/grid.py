"""A learning-rate grid trained as one model: stacked head weights and an AdamW with one rate per member.

Every member of the grid sees the same batches from the same initial weights, so stacking them turns
R small forward/backward passes into one (the per-op overhead, not the arithmetic, is what a probe
head's step costs). `AdamW` is the decoupled-weight-decay Adam of Loshchilov and Hutter with
torch's defaults, written out because its learning rate is a tensor broadcast over the members, and
because `torch.optim` imports `torch._dynamo` on first use: seconds, in a command whose whole budget
is seconds.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


def stacked_linear(copies: int, fan_in: int, fan_out: int, generator: torch.Generator) -> tuple[nn.Parameter, ...]:
    """(weight [1 -> copies, fan_in, fan_out], bias [copies, 1, fan_out]) initialised as `nn.Linear` does
    (uniform in +-1/sqrt(fan_in)), every copy the same."""
    bound = 1 / math.sqrt(fan_in)
    weight = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
    bias = (torch.rand(1, fan_out, generator=generator) * 2 - 1) * bound
    return nn.Parameter(weight.expand(copies, -1, -1).clone()), nn.Parameter(bias.expand(copies, -1, -1).clone())


class GridHead(nn.Module):
    """`copies` linear heads, or one-hidden-layer ReLU MLPs, evaluated together: x [B, D] -> logits [R, B, C]."""

    def __init__(self, kind: str, dim: int, n_classes: int, copies: int, hidden: int, seed: int):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        widths = [dim, n_classes] if kind == "linear" else [dim, hidden, n_classes]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(widths):
            weight, bias = stacked_linear(copies, fan_in, fan_out, generator)
            self.weights.append(weight)
            self.biases.append(bias)

    @property
    def copies(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(self.copies, -1, -1)
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(bias, h, weight)
            if layer < len(self.weights) - 1:
                h = torch.relu(h)
        return h

    def member_state(self, member: int) -> list[torch.Tensor]:
        """One member's weights (copies), to keep the best (learning rate, step) found so far."""
        return [p[member].detach().clone() for p in self.parameters()]

    def load_member(self, member: int, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, value in zip(self.parameters(), state, strict=True):
                p[member] = value


class AdamW:
    """AdamW (betas 0.9/0.999, eps 1e-8, bias-corrected moments, decay applied to every parameter).

    `lr` is a float or a tensor that broadcasts over each parameter, e.g. [R, 1, 1] for GridHead.
    """

    def __init__(self, params, lr: float | torch.Tensor, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.decay = 1 - lr * weight_decay  # decoupled decay, the same every step
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        root_correction = (1 - beta2**self.steps) ** 0.5
        for p, (mean, square) in zip(self.params, self.moments, strict=True):
            if p.grad is None:
                continue
            p.mul_(self.decay)
            mean.lerp_(p.grad, 1 - beta1)
            square.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denominator = square.sqrt().div_(root_correction).add_(self.eps)
            p.sub_(mean.div(denominator).mul_(step_size))
