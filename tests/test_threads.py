"""Thread counts chosen by work size: one for tiny models, every core for large ones, the user's word first."""

from __future__ import annotations

import os

import torch

from xares_llm.threads import SMALL_MODEL_PARAMETERS, choose_threads


def test_small_models_get_one_thread_and_large_ones_every_core(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads(torch.nn.Linear(128, 128)) == 1
    assert choose_threads(None) == 1  # a weight-free encoder such as mel
    large = torch.nn.Embedding(SMALL_MODEL_PARAMETERS // 64 + 1, 64)
    assert choose_threads(large) == (os.cpu_count() or 1)


def test_the_users_choice_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(torch.nn.Linear(4, 4)) == 3
    assert choose_threads(torch.nn.Linear(4, 4), requested=2) == 2
