"""Progress of long stages: evaluation shows its clip rate beside the count and ETA."""

from __future__ import annotations

import time

from xares_llm.cli.progress import EvalReporter, make_progress


def test_eval_progress_shows_clips_per_second():
    progress = make_progress()
    reporter = EvalReporter(progress)
    reporter.start_task("esc50", total_clips=40)
    for _ in range(4):
        time.sleep(0.02)
        reporter.advance(8)
    task = progress.tasks[reporter.task]
    assert task.completed == 32 and task.total == 40
    assert task.fields["status"].endswith("clips/s") and float(task.fields["status"].split()[0]) > 0
    assert task.time_remaining is not None
