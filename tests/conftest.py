"""Shared fixtures: a small demo dataset and its `mel` feature store, built once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from xares_llm.audio.demo_data import DemoSize, write_demo_shards
from xares_llm.extract.report import ExtractReport
from xares_llm.extract.run import extract
from xares_llm.tasks.schema import resolve_tasks

SMALL_DEMO = DemoSize(train_clips_per_shard=40, test_clips_per_shard=8)


@dataclass
class DemoStore:
    data_root: Path
    cache_root: Path
    report: ExtractReport


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    """Small demo shards extracted with `mel` (float32, so stored frames equal encoder output exactly)."""
    base = tmp_path_factory.mktemp("demo")
    data_root, cache_root = base / "data", base / "cache"
    write_demo_shards(data_root, SMALL_DEMO)
    report = extract("mel", resolve_tasks("demo"), cache_root, data_root, dtype="float32")
    return DemoStore(data_root, cache_root, report)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Test models are tiny: one thread avoids hand-off costs and oversubscription on shared CPUs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
