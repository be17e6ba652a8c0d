"""Estimate an extraction before it runs: clips, audio hours, store bytes, time, and the free disk.

Clips and audio bytes come from the tar headers of every local shard (a ``.tar.gz`` is decompressed
once to reach them). Audio hours: the first `SAMPLE_CLIPS` clips of each dataset split are decoded
and the seconds per audio byte they show scale the split's audio bytes (exact when every clip was
sampled). Store bytes: a few of those clips go through the real extractor and part writer (in
memory) in the chosen dtype; the bytes per frame written, times hours x frame rate, plus each part's fixed
overhead. Time: the same probe batch, timed after a warm-up, as audio seconds per wall second.
Shards not downloaded yet are not counted; the plan says how many.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xares_llm.audio.decoding import AUDIO_EXTENSIONS, REFERENCE_RESAMPLER, decode_audio
from xares_llm.audio.demo_data import is_demo, missing_demo_shards, write_demo_shards
from xares_llm.audio.shards import KEY_PATTERN
from xares_llm.cache import PartBuffer, SourceInfo
from xares_llm.cache.format import REFERENCE_PRECISION
from xares_llm.cache.writer import encoded_bytes
from xares_llm.constants import DEFAULT_BATCH_SECONDS, SAMPLE_RATE
from xares_llm.errors import DataError, StoreError
from xares_llm.extract.decode import DecodedWindow, WorkUnit
from xares_llm.extract.encode import Extractor
from xares_llm.extract.setup import set_up
from xares_llm.extract.units import is_up_to_date
from xares_llm.tasks.schema import Split, TaskConfig

SAMPLE_CLIPS = 16  # clips per dataset split decoded to measure seconds per audio byte
PROBE_SECONDS = 30.0  # at most this much sampled audio is encoded by the timed probe of `--plan`
CHECK_SECONDS = 5.0  # and by the untimed probe of the free-space check every extraction runs
KEPT_CLIPS, KEPT_SECONDS = 2, 10.0  # sampled audio kept per split for the probe (40 splits: about 50 MB)
FREE_ENV = "XARES_DISK_FREE"  # bytes: the free space the check assumes instead of asking the disk
STORE_ARRAYS = ("frames", "scales")  # the arrays whose size grows with frames


@dataclass
class SplitPlan:
    """One dataset split: what the tar headers say, and what extracting its parts still costs."""

    task: str
    dataset: str
    split: str
    shards: int
    missing: int = 0  # shards not downloaded yet: not counted
    up_to_date: int = 0  # parts already written: cost nothing
    clips: int = 0
    audio_bytes: int = 0
    sampled_seconds: float = 0.0
    sampled_bytes: int = 0
    sampled_clips: int = 0
    todo_audio_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)  # the decoded sample clips, for the probe

    @property
    def audio_hours(self) -> float:
        return self.audio_bytes * self.seconds_per_byte / 3600

    @property
    def todo_hours(self) -> float:
        return self.todo_audio_bytes * self.seconds_per_byte / 3600

    @property
    def seconds_per_byte(self) -> float:
        return self.sampled_seconds / self.sampled_bytes if self.sampled_bytes else 0.0

    @property
    def method(self) -> str:
        if self.clips and self.sampled_clips == self.clips:
            return "all decoded"
        if self.sampled_clips:
            return f"{self.sampled_clips} of {self.clips} decoded"
        return "no local audio"


@dataclass
class Probe:
    """What the probe batch showed: store bytes per frame, a part's fixed bytes, encoding speed."""

    bytes_per_frame: float
    part_overhead: int
    speed: float  # audio seconds encoded per wall second
    audio_seconds: float


@dataclass
class ExtractPlan:
    encoder_id: str
    dtype: str
    device: str
    frame_rate_hz: float
    output_dim: int
    probe: Probe
    rows: list[SplitPlan]
    cache_root: Path
    free_bytes: int
    generated: int = 0  # demo shards not written yet: extraction generates them (the plan used scratch copies)

    def store_bytes(self, row: SplitPlan) -> int:
        """Bytes the parts of `row` still to write will take."""
        frames = row.todo_hours * 3600 * self.frame_rate_hz
        parts = row.shards - row.up_to_date - row.missing
        return int(frames * self.probe.bytes_per_frame + max(0, parts) * self.probe.part_overhead)

    def seconds(self, row: SplitPlan) -> float:
        return row.todo_hours * 3600 / self.probe.speed if self.probe.speed else 0.0

    @property
    def total_bytes(self) -> int:
        return sum(self.store_bytes(r) for r in self.rows)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds(r) for r in self.rows)


def scan_shard(path: Path, row: SplitPlan, todo: bool) -> None:
    """Add one shard's clips and audio bytes (tar headers) to `row`; decode clips while the row's
    sample is short. Damage stops the count at the damage and is noted (extraction reports it)."""
    seen: set[str] = set()
    try:
        with tarfile.open(path, mode="r:*") as tar:  # a plain tar: headers only, member data skipped
            for member in tar:
                match = KEY_PATTERN.match(member.name) if member.isreg() else None
                if match is None or match.group(2).lower() not in AUDIO_EXTENSIONS or match.group(1) in seen:
                    continue
                seen.add(match.group(1))
                row.clips += 1
                row.audio_bytes += member.size
                row.todo_audio_bytes += member.size if todo else 0
                if row.sampled_clips < SAMPLE_CLIPS:
                    sample(tar, member, row)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile, zlib.error) as e:
        row.problems.append(f"{path.name}: counted up to the damage ({type(e).__name__})")


def sample(tar: tarfile.TarFile, member: tarfile.TarInfo, row: SplitPlan) -> None:
    data = tar.extractfile(member).read()
    try:
        audio = decode_audio(data, member.name)
    except DataError:
        return  # extraction drops it as undecodable; it says nothing about seconds per byte
    row.sampled_clips += 1
    row.sampled_bytes += member.size
    row.sampled_seconds += len(audio) / SAMPLE_RATE
    if len(row.audio) < KEPT_CLIPS:
        row.audio.append(audio[: int(KEPT_SECONDS * SAMPLE_RATE)])


def scan_units(units: list[WorkUnit], todo: list[WorkUnit]) -> list[SplitPlan]:
    """One row per dataset split, in the order the units come."""
    rows: dict[tuple[str, str], SplitPlan] = {}
    pending = {id(u) for u in todo}
    for unit in units:
        key = (unit.task.dataset.name, unit.split)
        row = rows.setdefault(key, SplitPlan(unit.task.name, key[0], unit.split, shards=0))
        row.shards += 1
        row.up_to_date += id(unit) not in pending
        if unit.local_path.is_file():
            scan_shard(unit.local_path, row, id(unit) in pending)
        else:
            row.missing += 1
    return list(rows.values())


def probe_clips(rows: list[SplitPlan], seconds: float) -> list[np.ndarray]:
    """Sampled clips, taken round the splits, up to `seconds` of audio; noise when none is local."""
    clips, total = [], 0.0
    for index in range(KEPT_CLIPS):
        for row in rows:
            if index < len(row.audio) and total < seconds:
                clips.append(row.audio[index])
                total += len(clips[-1]) / SAMPLE_RATE
    if not clips:
        clips = [np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * SAMPLE_RATE)).astype(np.float32)]
    return clips


def run_probe(extractor: Extractor, clips: list[np.ndarray], timed: bool) -> Probe:
    """Encode `clips` as extraction does (`timed`: after a one-clip warm-up), write them as a part in
    the chosen dtype in memory, and measure what that part takes. Untimed, the speed is 0."""
    shard = DecodedWindow(
        SourceInfo("probe", 0, "", 0), [f"p{i}" for i in range(len(clips))], clips, ["{}"] * len(clips)
    )
    if timed:
        warm_up = DecodedWindow(shard.source, ["w"], [clips[0][:SAMPLE_RATE]], ["{}"])
        extractor.encode(warm_up, None, keep_nonfinite=True)
    started = time.perf_counter()
    buffer: PartBuffer = extractor.encode(shard, None, keep_nonfinite=True)
    wall = time.perf_counter() - started if timed else 0.0
    audio_seconds = sum(len(c) for c in clips) / SAMPLE_RATE
    sizes = encoded_bytes(buffer)
    grows = sum(sizes.get(name, 0) for name in STORE_ARRAYS)
    overhead = sum(sizes.values()) - grows
    speed = audio_seconds / max(wall, 1e-9) if timed else 0.0
    n_frames = sum(len(f) for f in buffer.frames)
    return Probe(grows / max(1, n_frames), overhead, speed, audio_seconds)


def disk_free(path: Path) -> int:
    """Free bytes on the disk holding `path` (its nearest existing parent); `XARES_DISK_FREE` overrides."""
    override = os.environ.get(FREE_ENV)
    if override:
        try:
            return int(override)
        except ValueError as e:
            raise StoreError(f"{FREE_ENV}={override!r} is not a whole number of bytes") from e
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def estimate(
    extractor: Extractor, units: list[WorkUnit], todo: list[WorkUnit], cache_root: Path, timed: bool = True
) -> ExtractPlan:
    """The plan for `units`, of which `todo` are still to extract; `timed=False` (the free-space check
    of every extraction) probes a few seconds of audio and estimates no time."""
    rows = scan_units(units, todo)
    probe = run_probe(extractor, probe_clips(rows, PROBE_SECONDS if timed else CHECK_SECONDS), timed)
    for row in rows:
        row.audio = []  # the probe is done; the plan need not hold audio
    info = extractor.info
    return ExtractPlan(
        info.encoder_id, info.dtype, extractor.device, info.frame_rate_hz, info.output_dim, probe, rows,
        Path(cache_root), disk_free(cache_root),
    )  # fmt: skip


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_room(plan: ExtractPlan) -> None:
    """Refuse, in one line naming both numbers, an extraction whose estimate exceeds the free space."""
    need = plan.total_bytes
    if need > plan.free_bytes:
        raise StoreError(
            f"the store needs about {human_bytes(need)} ({need} bytes) but {plan.cache_root} has "
            f"{human_bytes(plan.free_bytes)} ({plan.free_bytes} bytes) free; free space, point --cache at a "
            "larger disk, choose a smaller --dtype (int8, bitround<N>), or pass --force"
        )


def plan_extract(
    encoder: str,
    tasks: list[TaskConfig],
    cache_root: Path,
    data_root: Path,
    splits: list[Split] | None = None,
    encoder_args: str | dict | None = None,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
    device: str | None = None,
    dtype: str = "float16",
    precision: str = REFERENCE_PRECISION,
    resampler: str = REFERENCE_RESAMPLER,
    threads: int | None = None,
) -> ExtractPlan:
    """The plan of `xares extract ... --plan`: the same encoder, units and writer an extraction would use.

    A plan writes nothing: demo shards that extraction would generate are generated into a scratch
    folder for the estimate (when every task is a demo task) and counted in `generated`."""
    generated = missing_demo_shards(data_root) if any(is_demo(t) for t in tasks) else 0
    with tempfile.TemporaryDirectory(prefix="xares-plan-") as scratch:
        if generated and all(is_demo(t) for t in tasks):
            write_demo_shards(Path(scratch))
            data_root = Path(scratch)
        setup = set_up(
            encoder, tasks, cache_root, data_root, splits, encoder_args, batch_seconds, device, dtype, precision,
            threads, resampler,
        )  # fmt: skip
        todo = [u for u in setup.units if not is_up_to_date(u)]
        plan = estimate(setup.extractor, setup.units, todo, cache_root)
    plan.generated = generated
    return plan
