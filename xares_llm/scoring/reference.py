"""What the organisers' reference system (xares-llm 0.0.12) does wherever it defines a score.

A score is comparable with the challenge's tables only when the run matches these values;
`differences` lists every setting of a run that does not, and `scores.json` carries the list.
docs/reference-parity.md explains each value and every place where we deliberately differ.
"""

from __future__ import annotations

from xares_llm.audio.decoding import REFERENCE_RESAMPLER
from xares_llm.cache.format import REFERENCE_PRECISION
from xares_llm.lalm.recipe import Recipe, load_recipe
from xares_llm.scoring.single_task import single_task_differences
from xares_llm.tasks.schema import TaskConfig, load_task

REFERENCE_SYSTEM = "xares-llm 0.0.12"
TRACK_STEPS = 100_000  # training steps of each track's mixture

# The instruction string of every official task, verbatim (case, punctuation, no trailing space).
PROMPTS: dict[str, str] = {
    "asvspoof2015": "Detect if the audio is genuine or a spoof.",
    "cremad": "Identify the emotion expressed in the speech.",
    "esc50": "Classify the environmental sound.",
    "fluentspeechcommands": "Identify the command, action, and object from the speech.",
    "freemusicarchive": "Classify the music genre (FMA).",
    "fsd50k": "Multi-label classification for FSD50k",
    "fsdkaggle2018": "Multi-label classification for FSDKaggle2018",
    "gtzan": "Classify the music genre (GTZAN).",
    "libricount": "Count the amount of speakers.",
    "nsynth": "Classify the music instrument.",
    "speechcommandsv1": "Classify the keyword.",
    "urbansound8k": "Classify the urban sound.",
    "vocalsound": "Classify the vocal sound.",
    "voxceleb1": "Are the two speakers the same or different?",
    "voxlingua33": "Classify the language.",
    "aishell1": "Transcribe the Chinese speech into text.",
    "clotho": "Generate a short caption for the audio.",
    "librispeech": "Transcribe the English speech into text",
    "mecat": "Write a general audiocaption.",
    "songdescriber": "Generate a caption for the music",
}

# Steps of the reference's single-task configs: the cheap per-task previews.
SINGLE_TASK_STEPS: dict[str, int] = {
    "cremad": 1000,
    "esc50": 2000,
    "gtzan": 2000,
    "libricount": 2000,
    "songdescriber": 2000,
    "urbansound8k": 2000,
    "vocalsound": 2000,
    "fluentspeechcommands": 3000,
    "clotho": 5000,
    "fsd50k": 5000,
    "voxceleb1": 5000,
    "speechcommandsv1": 10000,
    "nsynth": 20000,
    "voxlingua33": 30000,
    "aishell1": 50000,
    "librispeech": 50000,
    "asvspoof2015": 10000,
    "freemusicarchive": 10000,
    "fsdkaggle2018": 10000,
    "mecat": 10000,
}

# Mixtures whose reference step count is TRACK_STEPS.
TRACK_MIXTURES = ("task1", "task2", "all")

# Recipe fields that change a score; the rest (checkpointing, logging, loader workers, and the
# eval batch size, which matters only for padding frames we never feed) do not.
SCORE_FIELDS = ("llm", "projector", "lora", "optim", "batch_size", "window_seconds", "precision", "decoding", "seed")


def reference_recipe() -> Recipe:
    return load_recipe("reference")


def reference_steps(mixture: str, train_tasks: list[str]) -> int | None:
    """The reference's step count for a run: a track mixture, or one official task alone."""
    if mixture in TRACK_MIXTURES:
        return TRACK_STEPS
    if len(train_tasks) == 1:
        return SINGLE_TASK_STEPS.get(train_tasks[0])
    return None


def recipe_differences(recipe: Recipe) -> list[str]:
    """Score-relevant recipe fields that differ from the reference recipe, as readable lines."""
    reference = reference_recipe()
    lines = []
    for name in SCORE_FIELDS:
        ours, theirs = _plain(getattr(recipe, name)), _plain(getattr(reference, name))
        for key, mine, reference_value in _leaf_differences(name, ours, theirs):
            lines.append(f"recipe {key}: {_show(mine)} (reference: {_show(reference_value)})")
    return lines


def _plain(value: object) -> object:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if dump else value


def _leaf_differences(key: str, ours: object, theirs: object) -> list[tuple[str, object, object]]:
    """The differing fields of two values, dotted down to the first level where they stop being both dicts,
    so one reason is one short line (``llm.name``, not the whole llm block)."""
    if ours == theirs:
        return []
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for name in dict.fromkeys([*ours, *theirs]):
            found += _leaf_differences(f"{key}.{name}", ours.get(name), theirs.get(name))
        return found
    return [(key, ours, theirs)]


def differences(
    recipe: Recipe,
    mixture: str,
    train_tasks: list[str],
    prompts: dict[str, str],
    filter_targets: dict[str, bool],
    encoder_precision: str | None,
    steps_done: int,
    encoder_resampler: str | None = REFERENCE_RESAMPLER,
    single_task: TaskConfig | None = None,
) -> list[str]:
    """Every setting of a run that makes its scores incomparable with the reference; [] = comparable.

    `single_task` is the task of a single-task run as its run snapshot holds it: it must read what the
    reference's single-task config reads (`xares_llm.scoring.single_task`)."""
    lines = recipe_differences(recipe)
    expected = reference_steps(mixture, train_tasks)
    if expected is None:
        lines.append(f"mixture {mixture!r} of {len(train_tasks)} tasks has no reference step count")
    elif recipe.steps != expected:
        lines.append(f"steps: {recipe.steps} (reference: {expected})")
    if steps_done < recipe.steps:
        lines.append(f"unfinished: {steps_done} of {recipe.steps} steps trained")
    for task, prompt in prompts.items():
        if task not in PROMPTS:
            lines.append(f"task {task}: not an official task")
        elif prompt != PROMPTS[task]:
            lines.append(f"task {task}: prompt {prompt!r} (reference: {PROMPTS[task]!r})")
        elif not filter_targets.get(task, False):
            lines.append(f"task {task}: target filter off (reference: on)")
    if encoder_precision is not None and encoder_precision != REFERENCE_PRECISION:
        lines.append(f"encoder precision: {encoder_precision} (reference: {REFERENCE_PRECISION})")
    if encoder_resampler != REFERENCE_RESAMPLER:
        shown = encoder_resampler or "not recorded (stores made before it was used soxr)"
        lines.append(f"resampler: {shown} (reference: {REFERENCE_RESAMPLER})")
    if single_task is not None and single_task.name in PROMPTS:
        lines += single_task_differences(single_task, load_task(single_task.name))
    return lines


def _show(value: object) -> str:
    """A value in a reason; a whole block (a model config) by its size: its fields are in recipe.yaml."""
    if isinstance(value, dict):
        return f"a block of {len(value)} fields"
    return str(value)
