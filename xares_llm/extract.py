"""Stage one: run the frozen encoder once over every clip and write feature-store parts.

Work unit = one source shard -> one part. Per unit: read the tar (webdataset), decode each clip
to mono 16 kHz, sort by length, batch by total padded seconds, encode, trim to valid frames,
write the part atomically. Decoding of the next shard runs in a background thread and the write
of the previous part in another, so the encoder rarely waits. A rerun skips complete parts whose
source shard is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import webdataset as wds

from xares_llm import __version__
from xares_llm.audio import AUDIO_EXTENSIONS, decode_audio
from xares_llm.cache import (
    EncoderInfo,
    PartBuffer,
    PartLock,
    SourceInfo,
    part_name,
    read_encoder_info,
    read_part_attrs,
    remove_stale_temps,
    split_dir,
    write_part,
)
from xares_llm.cache.format import ENCODER_FILE, ENCODER_PRECISIONS, REFERENCE_PRECISION, STORE_DTYPES, encoder_dir
from xares_llm.constants import DEFAULT_BATCH_SECONDS, SAMPLE_RATE
from xares_llm.demo_data import write_demo_shards
from xares_llm.devices import resolve_device
from xares_llm.encoders import LoadedEncoder, load_encoder
from xares_llm.encoders.fingerprint import content_digest, fingerprint
from xares_llm.encoders.fingerprint import encoder_id as make_encoder_id
from xares_llm.encoding import AUTOCAST_DTYPES, encode_clips
from xares_llm.errors import DataError, EncoderError, StoreError
from xares_llm.sources import shard_path
from xares_llm.tasks import SPLITS, Split, TaskConfig

# Splits to extract: the same for every task, or per task name (training tasks need train, evaluated ones test).
SplitChoice = list[Split] | dict[str, list[Split]]
PROBE_SECONDS = 10.0  # audio used to measure an encoder's frame rate when it does not declare one


class ExtractProgress(Protocol):
    """What extraction reports while it runs (the CLI renders it with Rich)."""

    def start(self, total_units: int) -> None: ...
    def advance(self, clips: int, audio_seconds: float) -> None: ...
    def unit_done(self, label: str, skipped: bool) -> None: ...


@dataclass
class WorkUnit:
    task: TaskConfig  # the first task that reads this shard (it knows the hub repo)
    split: Split
    shard: str  # repo-relative shard path
    data_root: Path
    part_path: Path

    @property
    def local_path(self) -> Path:
        return self.data_root / self.shard

    @property
    def label(self) -> str:
        return f"{self.task.dataset.name}/{self.split}/{Path(self.shard).name}"


@dataclass
class DecodedShard:
    source: SourceInfo
    keys: list[str] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    meta: list[str] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)


@dataclass
class ExtractReport:
    encoder_id: str
    store: Path
    written: list[Path] = field(default_factory=list)
    up_to_date: int = 0
    elsewhere: int = 0  # parts another live process was extracting (their lock was held)
    clips: int = 0
    dropped: list[dict] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0


def preprocessing_settings() -> dict:
    return {"sample_rate": SAMPLE_RATE, "mono": "channel mean", "peak_normalise": "if |x| > 1", "resampler": "soxr HQ"}


def check_precision(precision: str, device: torch.device) -> None:
    """One-line refusals for a precision this device cannot honour."""
    if precision not in ENCODER_PRECISIONS:
        raise EncoderError(
            f"--encoder-precision must be one of {', '.join(ENCODER_PRECISIONS)} "
            f"({REFERENCE_PRECISION} is the reference setting), got {precision!r}"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise EncoderError(f"--encoder-precision bf16: {device} has no bfloat16 support; use fp16 or fp32")


def prepare_encoder(
    spec: str, kwargs: str | dict | None, device: str, dtype: str, precision: str = REFERENCE_PRECISION
) -> tuple[LoadedEncoder, EncoderInfo]:
    """Load the encoder, put it in eval mode on `device`, and describe it for encoder.json.

    `precision` is the encoder's compute precision (fp16/bf16 = autocast); it is part of the fingerprint.
    """
    if dtype not in STORE_DTYPES:
        raise StoreError(f"--dtype must be one of {', '.join(STORE_DTYPES)}, got {dtype!r}")
    torch_device = resolve_device(device)
    check_precision(precision, torch_device)
    device = str(torch_device)
    loaded = load_encoder(spec, kwargs)
    module = loaded.module.eval().to(device)
    rate = getattr(module, "sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise EncoderError(f"encoder {spec!r} declares sampling_rate={rate}; the benchmark feeds {SAMPLE_RATE} Hz")
    if not isinstance(getattr(module, "output_dim", None), int):
        raise EncoderError(f"encoder {spec!r} has no integer `output_dim`; run `xares check {spec}`")
    digest = fingerprint(loaded, preprocessing_settings(), dtype, precision)
    frame_rate = getattr(module, "frame_rate_hz", None) or measure_frame_rate(module, device)
    info = EncoderInfo(
        encoder_id=make_encoder_id(loaded, digest),
        spec=spec,
        qualname=loaded.qualname,
        kwargs=loaded.kwargs,
        fingerprint=digest,
        output_dim=module.output_dim,
        frame_rate_hz=float(frame_rate),
        sample_rate=SAMPLE_RATE,
        dtype=dtype,
        encoder_precision=precision,
        windowing={"max_input_seconds": getattr(module, "max_input_seconds", None)},
        xares_version=__version__,
    )
    return loaded, info


def candidate_ids(spec: str, kwargs: str | dict | None) -> list[str]:
    """Every encoder-id `spec` can have, one per encoder precision and store dtype (both are in the
    fingerprint), the reference precision first and the default dtype first within it."""
    loaded = load_encoder(spec, kwargs)
    content = content_digest(loaded)
    settings = preprocessing_settings()
    return [
        make_encoder_id(loaded, fingerprint(loaded, settings, dtype, precision, content))
        for precision in ENCODER_PRECISIONS
        for dtype in STORE_DTYPES
    ]


def measure_frame_rate(module: torch.nn.Module, device: str) -> float:
    probe = np.zeros(int(PROBE_SECONDS * SAMPLE_RATE), dtype=np.float32)
    (frames,) = encode_clips(module, [probe], device)
    return len(frames) / PROBE_SECONDS


def write_encoder_info(cache_root: Path, info: EncoderInfo) -> None:
    """Create encoder.json, or confirm the existing one was made by this very encoder."""
    existing = read_encoder_info(cache_root, info.encoder_id)
    if existing is not None:
        if existing.fingerprint != info.fingerprint:
            raise StoreError(
                f"{encoder_dir(cache_root, info.encoder_id)} belongs to another encoder (fingerprint "
                f"{existing.fingerprint[:16]}… vs {info.fingerprint[:16]}…); remove it or use another --cache"
            )
        return
    path = encoder_dir(cache_root, info.encoder_id) / ENCODER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(info.to_json())
    tmp.replace(path)


def plan_units(
    tasks: list[TaskConfig], splits: SplitChoice, cache_root: Path, data_root: Path, encoder_id: str
) -> list[WorkUnit]:
    """One unit per distinct (dataset, split, shard); demo shards are written when missing.

    Nothing is downloaded here: a missing shard is fetched by the decode worker, so downloads
    overlap with encoding, and a complete part whose audio is absent (a shared cache) needs none.
    """
    if any(t.dataset.repo is None and t.track == "demo" for t in tasks):
        write_demo_shards(data_root)
    units: dict[tuple[str, str, str], WorkUnit] = {}
    for task in tasks:
        for split in splits.get(task.name, []) if isinstance(splits, dict) else splits:
            directory = split_dir(cache_root, encoder_id, task.dataset.name, split)
            for shard in task.dataset.shards(split):
                units.setdefault(
                    (task.dataset.name, split, shard),
                    WorkUnit(task, split, shard, data_root, directory / part_name(shard)),
                )
    return list(units.values())


def source_info(unit: WorkUnit, previous: SourceInfo | None = None) -> SourceInfo:
    """Describe the shard file; re-hash only when size or mtime differ from `previous`."""
    stat = unit.local_path.stat()
    if previous and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns:
        return previous
    with unit.local_path.open("rb") as f:
        sha = hashlib.file_digest(f, "sha256").hexdigest()
    return SourceInfo(name=unit.shard, size=stat.st_size, sha256=sha, mtime_ns=stat.st_mtime_ns)


def is_up_to_date(unit: WorkUnit) -> bool:
    attrs = read_part_attrs(unit.part_path)
    if attrs is None:
        return False
    if not unit.local_path.is_file():
        return True  # complete, and no audio here to compare against
    current = source_info(unit, attrs.source)
    return (current.name, current.size, current.sha256) == (attrs.source.name, attrs.source.size, attrs.source.sha256)


def decode_shard(unit: WorkUnit) -> DecodedShard:
    """Fetch the shard if needed, then read and decode every sample; bad samples are recorded, never fatal."""
    shard_path(unit.task, unit.shard, unit.data_root, quiet=True)
    decoded = DecodedShard(source=source_info(unit))
    try:
        samples = list(wds.WebDataset(str(unit.local_path), shardshuffle=False, empty_check=False))
    except Exception as e:  # a truncated or corrupt tar: webdataset raises many types
        raise DataError(f"cannot read shard {unit.local_path}: {type(e).__name__}: {e}") from e
    for sample in samples:
        key = sample["__key__"]
        ext = next((e for e in AUDIO_EXTENSIONS if e in sample), None)
        if ext is None:
            present = sorted(k for k in sample if not k.startswith("__"))
            decoded.dropped.append({"key": key, "reason": f"no audio file (found {', '.join(present) or 'nothing'})"})
            continue
        try:
            meta_text = sample["json"].decode("utf-8") if "json" in sample else "{}"
            json.loads(meta_text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            decoded.dropped.append({"key": key, "reason": f"unreadable json: {e}"})
            continue
        try:
            audio = decode_audio(sample[ext], f"{key}.{ext}")
        except DataError as e:
            decoded.dropped.append({"key": key, "reason": str(e)})
            continue
        if audio.size == 0:
            decoded.dropped.append({"key": key, "reason": "empty audio"})
            continue
        decoded.keys.append(key)
        decoded.audio.append(audio)
        decoded.meta.append(meta_text)
    return decoded


def length_batches(lengths: list[int], batch_seconds: float) -> Iterator[list[int]]:
    """Indices sorted by length (longest first), grouped so batch size x longest <= batch_seconds."""
    budget = batch_seconds * SAMPLE_RATE
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        longest = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) + 1) * longest > budget:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


class Extractor:
    """Encodes decoded shards into part buffers with one loaded encoder."""

    def __init__(self, module: torch.nn.Module, info: EncoderInfo, device: str, batch_seconds: float):
        self.module, self.info, self.device, self.batch_seconds = module, info, device, batch_seconds
        # fp32 unless encoder.json says otherwise: autocast is an explicit choice, never implied by the store dtype
        self.autocast_dtype = AUTOCAST_DTYPES[info.encoder_precision]

    def encode(self, shard: DecodedShard, progress: ExtractProgress | None) -> PartBuffer:
        buffer = PartBuffer(dim=self.info.output_dim, dtype=self.info.dtype, dropped=list(shard.dropped))
        features: dict[int, np.ndarray] = {}
        failed: dict[int, str] = {}
        for batch in length_batches([len(a) for a in shard.audio], self.batch_seconds):
            for index, result in zip(batch, self._encode_batch([shard.audio[i] for i in batch]), strict=True):
                if isinstance(result, str):
                    failed[index] = result
                else:
                    features[index] = result
            if progress:
                progress.advance(len(batch), sum(len(shard.audio[i]) for i in batch) / SAMPLE_RATE)
        for index, key in enumerate(shard.keys):  # source order, whatever order we encoded in
            if index in failed:
                buffer.drop(key, failed[index])
            else:
                buffer.add(key, features[index], shard.meta[index], len(shard.audio[index]))
        return buffer

    def _encode_batch(self, clips: list[np.ndarray]) -> list[np.ndarray | str]:
        """Encode a batch; if it fails, retry clip by clip so one bad clip costs only itself."""
        try:
            return [f.numpy() for f in encode_clips(self.module, clips, self.device, self.autocast_dtype)]
        except (RuntimeError, ValueError, TypeError) as e:
            if len(clips) == 1:
                return [f"encoder failed: {type(e).__name__}: {e}"]
            if torch.device(self.device).type == "cuda":
                torch.cuda.empty_cache()
            return [result for clip in clips for result in self._encode_batch([clip])]


def claim_units(
    todo: list[WorkUnit], report: ExtractReport, progress: ExtractProgress | None, held: list[PartLock]
) -> Iterator[tuple[WorkUnit, PartLock]]:
    """Yield the units this process claims, in order; units another live process holds are skipped.

    Every acquired lock is appended to `held`, so the caller can release them all on failure.
    """
    for unit in todo:
        lock = PartLock(unit.part_path)
        if lock.acquire():
            held.append(lock)
        if not lock.held:
            report.elsewhere += 1
        elif is_up_to_date(unit):  # finished by another process since we planned
            lock.release()
            report.up_to_date += 1
        else:
            yield unit, lock
            continue
        if progress:
            progress.unit_done(unit.label, skipped=True)


def write_and_release(path: Path, buffer: PartBuffer, source: SourceInfo, lock: PartLock) -> None:
    try:
        write_part(path, buffer, source)
    finally:
        lock.release()


def extract(
    encoder: str,
    tasks: list[TaskConfig],
    cache_root: Path,
    data_root: Path,
    splits: SplitChoice | None = None,
    encoder_args: str | dict | None = None,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    device: str = "cpu",
    dtype: str = "float16",
    precision: str = REFERENCE_PRECISION,
    decode_workers: int = 0,
    progress: ExtractProgress | None = None,
) -> ExtractReport:
    """Extract every missing part of `tasks` x `splits` for `encoder` into the cache at `cache_root`.

    Shards are fetched and decoded ahead of the encoder: in one background thread, or in
    `decode_workers` processes (for a fast GPU encoder that one core cannot keep fed). The encoder
    computes in `precision`: fp32 (the reference) or fp16/bf16 autocast, on any device.
    """
    started = time.perf_counter()
    loaded, info = prepare_encoder(encoder, encoder_args, device, dtype, precision)
    report = ExtractReport(encoder_id=info.encoder_id, store=encoder_dir(cache_root, info.encoder_id))
    units = plan_units(tasks, splits or list(SPLITS), cache_root, data_root, info.encoder_id)
    for directory in {u.part_path.parent for u in units}:
        remove_stale_temps(directory)
    todo = []
    for unit in units:
        if is_up_to_date(unit):
            report.up_to_date += 1
        else:
            todo.append(unit)
    if progress:
        progress.start(len(units))
        for unit in units:
            if unit not in todo:
                progress.unit_done(unit.label, skipped=True)
    if not todo:
        report.wall_seconds = time.perf_counter() - started
        return report
    write_encoder_info(cache_root, info)
    extractor = Extractor(loaded.module, info, device, batch_seconds)
    held: list[PartLock] = []
    claimed = claim_units(todo, report, progress, held)
    pending: deque[tuple[WorkUnit, PartLock, Future]] = deque()
    depth = max(1, decode_workers) + 1  # shards decoding ahead of the encoder

    def top_up(decoder: Executor) -> None:
        while len(pending) < depth and (claim := next(claimed, None)) is not None:
            pending.append((*claim, decoder.submit(decode_shard, claim[0])))

    decoder = (
        ProcessPoolExecutor(decode_workers, mp_context=multiprocessing.get_context("spawn"))  # no fork after torch
        if decode_workers
        else ThreadPoolExecutor(1, "xares-decode")
    )
    try:
        with decoder, ThreadPoolExecutor(1, "xares-write") as writer:
            top_up(decoder)
            pending_write: Future | None = None
            while pending:
                unit, lock, decoding = pending.popleft()
                shard = decoding.result()
                top_up(decoder)
                buffer = extractor.encode(shard, progress)
                if pending_write is not None:
                    pending_write.result()
                pending_write = writer.submit(write_and_release, unit.part_path, buffer, shard.source, lock)
                report.written.append(unit.part_path)
                report.clips += len(buffer.keys)
                report.dropped += [{**d, "shard": unit.shard} for d in buffer.dropped]
                report.audio_seconds += sum(buffer.n_samples) / SAMPLE_RATE
                if progress:
                    progress.unit_done(unit.label, skipped=False)
            if pending_write is not None:
                pending_write.result()
    finally:  # an error or Ctrl-C: free our claims so a rerun in this process can take them
        for future in (item[2] for item in pending):
            future.cancel()
        for lock in held:
            lock.release()
    report.wall_seconds = time.perf_counter() - started
    return report
