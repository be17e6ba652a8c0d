"""Per-sample results of a scored run, both from the one pass of each metric in `xares score`.

- ``per_sample/<task>.jsonl``: each predictions row with what the metric saw for that clip (correct
  pairs, labels matched and missed, WER edits, FENSE or DATE terms), to read and slice errors;
- ``per_sample/<task>.stats.npz``: the per-clip statistics the report's bootstrap resamples
  (`xares_llm.metrics.base.SampleStats`), so `xares report` loads no model. It records a fingerprint
  of the predictions file and the metric; a file made from other predictions is not used. With the
  records read back from the ``.jsonl`` it is the whole `SampleStats`.

Both are left alone when unchanged, so rescoring the same predictions rewrites nothing but the scores.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from xares_llm.cache.atomic import atomic_file
from xares_llm.metrics import MetricError, SampleStats
from xares_llm.metrics.per_clip import rebuild_stats
from xares_llm.scoring.predictions import predictions_path

PER_SAMPLE_DIR = "per_sample"
STATS_SUFFIX = ".stats.npz"
_ARRAY_PREFIX = "stat_"  # saved arrays are stored as stat_<name>, beside metric, kind, clips, fingerprint
_ROW_FIELDS = ("key", "prediction", "references", "metric")  # what a per-sample line adds to its record


def per_sample_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / PER_SAMPLE_DIR / f"{task}.jsonl"


def stats_path(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / PER_SAMPLE_DIR / f"{task}{STATS_SUFFIX}"


def fingerprint(run_dir: Path, task: str, metric: str, args: dict) -> str:
    """sha256 of the task's predictions file and the metric that scored it."""
    digest = hashlib.sha256(predictions_path(run_dir, task).read_bytes())
    digest.update(json.dumps([metric, args], sort_keys=True).encode())
    return digest.hexdigest()


def write_per_sample(
    run_dir: Path, task: str, rows: list[dict], metric: str, args: dict, stats: SampleStats | None
) -> None:
    """Both per-sample files of one task; a plugin metric without a per-clip form gets rows marked so."""
    records = stats.records if stats is not None else [{"per_sample_score": None}] * len(rows)
    lines = []
    for row, record in zip(rows, records, strict=True):
        line = {"key": row.get("key"), "prediction": row["prediction"], "references": row["references"]}
        lines.append(json.dumps({**line, "metric": metric, **record}, ensure_ascii=False) + "\n")
    _write_if_changed(per_sample_path(run_dir, task), "".join(lines).encode("utf-8"))
    saved = stats_path(run_dir, task)
    if stats is None or not stats.kind:
        saved.unlink(missing_ok=True)  # an earlier metric's statistics must not outlive its scores
        return
    arrays = {_ARRAY_PREFIX + name: value for name, value in stats.arrays.items()}
    meta = {"metric": metric, "kind": stats.kind, "clips": stats.clips}
    meta["fingerprint"] = fingerprint(run_dir, task, metric, args)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.array(v) for k, v in meta.items()}, **arrays)
    _write_if_changed(saved, buffer.getvalue())


def load_stats(run_dir: Path, task: str, metric: str, args: dict) -> SampleStats | None:
    """The saved statistics of a task; None when absent (a run scored before they were saved) or made
    from other predictions or another metric; MetricError naming the file when it cannot be read."""
    path, lines = stats_path(run_dir, task), per_sample_path(run_dir, task)
    if not (path.is_file() and lines.is_file() and predictions_path(run_dir, task).is_file()):
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) != fingerprint(run_dir, task, metric, args) or str(saved["metric"]) != metric:
                return None
            arrays = {k.removeprefix(_ARRAY_PREFIX): saved[k] for k in saved.files if k.startswith(_ARRAY_PREFIX)}
            stats = rebuild_stats(metric, str(saved["kind"]), arrays, int(saved["clips"]))
        with lines.open(encoding="utf-8") as f:
            stats.records = [{k: v for k, v in json.loads(line).items() if k not in _ROW_FIELDS} for line in f]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise MetricError(f"{path}: unreadable per-clip statistics ({e}); rescore with `xares score`") from e
    if len(stats.records) != stats.clips:
        raise MetricError(f"{lines}: {len(stats.records)} lines for {stats.clips} clips; rescore with `xares score`")
    return stats


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        f.write(data)
