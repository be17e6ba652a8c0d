"""The probe's learning-rate grid: one stacked model must train exactly as separate heads under torch's AdamW."""

from __future__ import annotations

import torch
from torch import nn

from xares_llm.probe.grid import AdamW, GridHead

RATES = (1e-3, 3.2e-3, 1e-2)


def separate_mlp(grid: GridHead, member: int) -> nn.Sequential:
    """Member `member` of a grid MLP as an ordinary torch module with the same weights."""
    w1, w2 = grid.weights
    b1, b2 = grid.biases
    first, second = nn.Linear(w1.shape[1], w1.shape[2]), nn.Linear(w2.shape[1], w2.shape[2])
    with torch.no_grad():
        first.weight.copy_(w1[member].T)
        first.bias.copy_(b1[member, 0])
        second.weight.copy_(w2[member].T)
        second.bias.copy_(b2[member, 0])
    return nn.Sequential(first, nn.ReLU(), second)


def test_grid_members_train_like_separate_heads_under_torch_adamw():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 12, generator=generator), torch.randint(0, 5, (64,), generator=generator)
    grid = GridHead("mlp", 12, 5, len(RATES), hidden=16, seed=3)
    assert all(torch.equal(p[0], p[2]) for p in grid.parameters())  # every member starts from the same weights
    heads = [separate_mlp(grid, m) for m in range(len(RATES))]
    optimizers = [torch.optim.AdamW(h.parameters(), lr, weight_decay=1e-4) for h, lr in zip(heads, RATES, strict=True)]
    lr = torch.tensor(RATES)[:, None, None]
    ours = AdamW(grid.parameters(), lr=lr, weight_decay=1e-4)
    for step in range(20):
        rows = torch.arange(step % 4 * 16, step % 4 * 16 + 16)
        logits = grid(x[rows])
        loss = sum(nn.functional.cross_entropy(logits[m], y[rows]) for m in range(len(RATES)))
        ours.zero_grad()
        loss.backward()
        ours.step()
        for head, optimizer in zip(heads, optimizers, strict=True):
            optimizer.zero_grad()
            nn.functional.cross_entropy(head(x[rows]), y[rows]).backward()
            optimizer.step()
    for m, head in enumerate(heads):
        torch.testing.assert_close(grid(x)[m], head(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(grid(x)[0], grid(x)[2])  # the rates did make the members differ


def test_member_state_round_trips():
    grid = GridHead("linear", 4, 3, 2, hidden=8, seed=0)
    with torch.no_grad():
        grid.weights[0][1] += 1.0
    kept = grid.member_state(1)
    grid.load_member(0, kept)
    torch.testing.assert_close(grid(torch.ones(2, 4))[0], grid(torch.ones(2, 4))[1])
