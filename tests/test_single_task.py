"""Single-task previews read what the reference's single-task configs read, or say why not."""

from __future__ import annotations

import json

import numpy as np

from xares_llm.cache import FeatureSplit, SourceInfo
from xares_llm.cache.format import part_name, split_dir
from xares_llm.cache.writer import PartBuffer, write_part
from xares_llm.cli.run import single_task_plans
from xares_llm.lalm.recipe import load_recipe
from xares_llm.scoring.reference import PROMPTS, SINGLE_TASK_STEPS, differences
from xares_llm.scoring.single_task import single_task_view
from xares_llm.tasks.schema import load_task


def test_views_of_the_three_tasks_whose_single_task_configs_differ():
    esc50, fsd50k, nsynth = (load_task(n) for n in ("esc50", "fsd50k", "nsynth"))
    view = single_task_view(esc50)
    assert view.labels.keys("train") == ["text", "caption", "captions", "label", "labels"]
    assert view.labels.test == esc50.labels.test and view.dataset == esc50.dataset
    view = single_task_view(fsd50k)
    assert view.dataset.shards("test") == ["FSD50k/test/eval_with_text_000000.tar.gz"]  # 1 of 32
    assert len(fsd50k.dataset.shards("test")) == 32 and view.dataset.shards("train") == fsd50k.dataset.shards("train")
    assert single_task_view(nsynth) == nsynth  # the reference's is a packaging the published data lacks
    assert single_task_view(load_task("cremad")) == load_task("cremad")


def single_run(task, steps_done=None):
    steps = SINGLE_TASK_STEPS[task.name]
    return differences(
        load_recipe("reference", {"steps": steps}), task.name, [task.name], {task.name: PROMPTS[task.name]},
        {task.name: True}, "fp32", steps_done or steps, single_task=task,
    )  # fmt: skip


def test_a_preview_is_comparable_only_when_it_reads_the_single_task_data():
    esc50, fsd50k, nsynth = (load_task(n) for n in ("esc50", "fsd50k", "nsynth"))
    assert single_run(single_task_view(esc50)) == [] and single_run(single_task_view(fsd50k)) == []
    assert single_run(fsd50k) == ["task fsd50k: 32 test shards (reference single-task: 1)"]
    assert single_run(esc50)[0].startswith("task esc50: label keys")
    (line,) = single_run(nsynth)
    assert "test_0000000" in line and "not" in line


def test_xares_run_tasks_uses_the_views():
    plans = single_task_plans("esc50,fsd50k,nsynth", "reference", {})
    tasks = {mixture.name: mixture.tasks[mixture.name] for mixture, _ in plans}
    assert tasks["esc50"].labels.train.startswith("text;") and len(tasks["fsd50k"].dataset.shards("test")) == 1
    assert [recipe.steps for _, recipe in plans] == [2000, 5000, 20000]


def test_a_split_of_some_shards_reads_only_their_parts(tmp_path):
    shards = load_task("fsd50k").dataset.shards("test")[:2]
    directory = split_dir(tmp_path, "enc", "fsd50k", "test")
    for i, shard in enumerate(shards):
        buffer = PartBuffer(dim=1, dtype="float32")
        buffer.add(f"clip{i}", np.zeros((2, 1), np.float32), json.dumps({"label": "Dog"}), 3200)
        write_part(directory / part_name(shard), buffer, SourceInfo(shard, 1, "0", 0))
    assert len(FeatureSplit(tmp_path, "enc", "fsd50k", "test")) == 2
    first = FeatureSplit(tmp_path, "enc", "fsd50k", "test", shards[:1])
    assert len(first) == 1 and first.key(0) == "clip0"
