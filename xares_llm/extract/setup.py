"""The set-up an extraction and its plan share: the loaded encoder, its extractor and the work units."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xares_llm.devices import resolve_device
from xares_llm.encoders.describe import prepare_encoder
from xares_llm.extract.decode import WorkUnit
from xares_llm.extract.encode import Extractor
from xares_llm.extract.units import SplitChoice, plan_units
from xares_llm.tasks.schema import SPLITS, TaskConfig
from xares_llm.threads import use_threads


@dataclass
class ExtractSetup:
    extractor: Extractor
    units: list[WorkUnit]


def set_up(
    encoder: str,
    tasks: list[TaskConfig],
    cache_root: Path,
    data_root: Path,
    splits: SplitChoice | None,
    encoder_args: str | dict | None,
    batch_seconds: float,
    device: str | None,
    dtype: str,
    precision: str,
    threads: int | None,
    resampler: str,
) -> ExtractSetup:
    """Load the encoder on its device and plan one unit per shard; nothing is written."""
    device = str(resolve_device(device))
    loaded, info = prepare_encoder(encoder, encoder_args, device, dtype, precision, resampler)
    use_threads(loaded.module, threads)
    units = plan_units(tasks, splits or list(SPLITS), cache_root, data_root, info.encoder_id, resampler)
    return ExtractSetup(Extractor(loaded.module, info, device, batch_seconds), units)
