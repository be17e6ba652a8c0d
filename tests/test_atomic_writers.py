"""Files the toolkit writes are replaced whole: two writers of one file never collide on a temp name,
and a reader sees the old content or the new, never a mix or an empty file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from xares_llm.probe.outputs import ProbeResults, write_results
from xares_llm.scoring.per_sample import per_sample_path, write_per_sample
from xares_llm.scoring.predictions import counts_path, write_counts
from xares_llm.scoring.score import SCORES_TSV, Scores, TaskScore, write_tsv
from xares_llm.tasks.schema import load_task
from xares_llm.tasks.snapshots import TASKS_DIR, write_task_snapshots

WRITES = 20  # per writer
BIG = 5_000  # repeats of the payload, so one write takes long enough to be caught half done


def counts(run: Path, n: int) -> Path:
    write_counts(run, "esc50", {"writer": n, "payload": ["x" * 40] * BIG})
    return counts_path(run, "esc50")


def per_sample(run: Path, n: int) -> Path:
    rows = [{"key": f"k{i}", "prediction": f"p{n}", "references": ["r"]} for i in range(BIG // 10)]
    write_per_sample(run, "esc50", rows, "plugin", {}, None)
    return per_sample_path(run, "esc50")


def probe_scores(run: Path, n: int) -> Path:
    versions = {f"package{i}": str(n) for i in range(BIG // 10)}
    return write_results(run, ProbeResults("enc", "spec", n, "cpu", "mean", ["linear"], versions))


def snapshots(run: Path, n: int) -> Path:
    task = load_task("esc50")
    write_task_snapshots(run, [task.model_copy(update={"version": n + 1, "prompt": "p" * 40 * BIG})])
    return Path(run) / TASKS_DIR / "esc50.yaml"


def scores_tsv(run: Path, n: int) -> Path:
    tasks = {f"t{i}": TaskScore(f"t{i}", "A", "accuracy", n / 100, i, {}, 1) for i in range(BIG // 10)}
    write_tsv(Path(run) / SCORES_TSV, Scores(tasks, {"A": 0.5}, 0.5))
    return Path(run) / SCORES_TSV


def complete(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return bool(json.loads(text))
    if path.suffix == ".yaml":
        return len(yaml.safe_load(text)["prompt"]) == 40 * BIG
    return text.endswith("\n") and len(text.splitlines()) > 100


@pytest.mark.parametrize("writer", [counts, per_sample, probe_scores, snapshots, scores_tsv])
def test_two_writers_and_a_reader_of_one_file(writer, tmp_path):
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    target = writer(run, 0)
    errors: list[BaseException] = []
    torn: list[str] = []
    stop = threading.Event()

    def write(first: int) -> None:
        try:
            for n in range(first, first + WRITES):
                writer(run, n)
        except BaseException as e:  # the test reports any failure of a writer
            errors.append(e)

    def read() -> None:
        while not stop.is_set():
            try:
                if not complete(target):
                    torn.append("short")
            except (ValueError, TypeError, FileNotFoundError, yaml.YAMLError) as e:
                torn.append(repr(e))

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(k * WRITES,)) for k in range(2)]
    reader.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert errors == [] and torn == []
    assert sorted(p.name for p in target.parent.iterdir() if ".tmp" in p.name) == []  # no temp left behind
