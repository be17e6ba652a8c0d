"""The reference's single-task configs (its `tasks/single/`), as views of our task configs.

`xares run --tasks NAME` previews one task with the reference's single-task step count. For three
tasks the reference's single-task YAMLs also read other data than its track configs; a preview
reads what they read, except where that is plainly a bug, which is kept out and marked:

- esc50 trains under the key list ``text;caption;captions;label;labels`` (the track: ``label;labels``);
- fsd50k evaluates on the first of its 32 test shards;
- nsynth: the single-task YAML evaluates a local shard ``test_0000000`` under
  ``text;caption;captions;label;labels``, and trains on 29 local shards ``train_00000{00..28}``: the
  authors' own packaging under ``env/``, which the published data does not have (its 6 test and
  372 train shards carry ``instrument_family_str``). We keep the track's data, and the preview is
  marked not comparable.
"""

from __future__ import annotations

from xares_llm.tasks.schema import TaskConfig

CAPTION_KEYS = "text;caption;captions;label;labels"
VIEW_LABELS: dict[str, dict[str, str]] = {"esc50": {"train": CAPTION_KEYS}}
VIEW_TEST_SHARDS: dict[str, int] = {"fsd50k": 1}  # the first n test shards
NOT_FOLLOWED: dict[str, str] = {
    "nsynth": (
        "single-task preview of nsynth: the reference's single-task config reads a local packaging "
        f"(test_0000000 under {CAPTION_KEYS}) the published data does not have; ours evaluates all 6 "
        "published test shards under instrument_family_str"
    ),
}


def single_task_view(task: TaskConfig) -> TaskConfig:
    """`task` as the reference's single-task config reads it (the task itself where they agree)."""
    labels, dataset = task.labels, task.dataset
    if task.name in VIEW_LABELS:
        labels = labels.model_copy(update=VIEW_LABELS[task.name])
    if task.name in VIEW_TEST_SHARDS:
        dataset = dataset.model_copy(update={"test": dataset.shards("test")[: VIEW_TEST_SHARDS[task.name]]})
    return task.model_copy(update={"labels": labels, "dataset": dataset})


def single_task_differences(task: TaskConfig, official: TaskConfig) -> list[str]:
    """Why a single-task run of `task` (its run snapshot) is not the reference's single-task config."""
    if task.name in NOT_FOLLOWED:
        return [NOT_FOLLOWED[task.name]]
    view = single_task_view(official)
    lines = []
    if task.labels != view.labels:
        ours, theirs = task.labels.model_dump(), view.labels.model_dump()
        lines.append(f"task {task.name}: label keys {ours} (reference single-task: {theirs})")
    if task.dataset.shards("test") != view.dataset.shards("test"):
        lines.append(
            f"task {task.name}: {len(task.dataset.shards('test'))} test shards "
            f"(reference single-task: {len(view.dataset.shards('test'))})"
        )
    return lines
