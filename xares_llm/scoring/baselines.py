"""Published scores of the reference system (published with the challenge, A100) and of the challenge's
teams, and each task's domain."""

BASELINES: dict[str, dict[str, float]] = {
    "Dasheng-Base": {
        "asvspoof2015": 0.937,
        "cremad": 0.621,
        "esc50": 0.755,
        "fluentspeechcommands": 0.984,
        "freemusicarchive": 0.429,
        "fsd50k": 0.063,
        "fsdkaggle2018": 0.415,
        "gtzan": 0.323,
        "libricount": 0.386,
        "nsynth": 0.675,
        "speechcommandsv1": 0.655,
        "urbansound8k": 0.829,
        "vocalsound": 0.855,
        "voxceleb1": 0.974,
        "voxlingua33": 0.311,
        "track_A": 0.614,
        "aishell1": 0.018,
        "clotho": 0.207,
        "librispeech": 0.103,
        "mecat": 0.60,
        "songdescriber": 0.41,
        "track_B": 0.268,
    },
    "Whisper-Base": {
        "asvspoof2015": 0.943,
        "cremad": 0.516,
        "esc50": 0.635,
        "fluentspeechcommands": 0.817,
        "freemusicarchive": 0.579,
        "fsd50k": 0.092,
        "fsdkaggle2018": 0.552,
        "gtzan": 0.697,
        "libricount": 0.409,
        "nsynth": 0.638,
        "speechcommandsv1": 0.694,
        "urbansound8k": 0.737,
        "vocalsound": 0.867,
        "voxceleb1": 0.762,
        "voxlingua33": 0.835,
        "track_A": 0.652,
        "aishell1": 0.361,
        "clotho": 0.358,
        "librispeech": 0.385,
        "mecat": 0.624,
        "songdescriber": 0.448,
        "track_B": 0.435,
    },
}

# The challenge's public scores per task across its 23 teams: (best, median).
CHALLENGE_PUBLIC: dict[str, tuple[float, float]] = {
    "asvspoof2015": (0.990, 0.974),
    "cremad": (0.879, 0.677),
    "esc50": (0.935, 0.765),
    "fluentspeechcommands": (0.996, 0.987),
    "freemusicarchive": (0.959, 0.616),
    "fsd50k": (0.339, 0.141),
    "fsdkaggle2018": (0.891, 0.667),
    "gtzan": (0.939, 0.828),
    "libricount": (0.553, 0.459),
    "nsynth": (0.788, 0.700),
    "speechcommandsv1": (0.935, 0.747),
    "urbansound8k": (0.896, 0.826),
    "vocalsound": (0.945, 0.915),
    "voxceleb1": (0.985, 0.964),
    "voxlingua33": (0.975, 0.873),
    "aishell1": (0.909, 0.384),
    "clotho": (0.494, 0.420),
    "librispeech": (0.934, 0.456),
    "mecat": (0.697, 0.645),
    "songdescriber": (0.510, 0.482),
}
CHALLENGE_TRACK_WINNERS = {"A": 0.912, "B": 0.659}  # final score = mean of public and hidden

DOMAINS = ("speech", "sound", "music")
TASK_DOMAINS: dict[str, str] = {
    **dict.fromkeys(
        (
            "asvspoof2015",
            "cremad",
            "fluentspeechcommands",
            "libricount",
            "speechcommandsv1",
            "vocalsound",
            "voxceleb1",
            "voxlingua33",
            "aishell1",
            "librispeech",
        ),
        "speech",
    ),
    **dict.fromkeys(("esc50", "fsd50k", "fsdkaggle2018", "urbansound8k", "clotho", "mecat", "demo_count"), "sound"),
    **dict.fromkeys(("freemusicarchive", "gtzan", "nsynth", "songdescriber", "demo_pitch", "demo_melody"), "music"),
    "demo_events": "sound",
}


def task_domain(task: str) -> str:
    return TASK_DOMAINS.get(task, "other")


def baseline_mean(scores: dict[str, float], tasks: list[str]) -> float | None:
    """A baseline's plain mean over exactly `tasks`, or None when it has no score for one of them.

    A published track mean covers the whole track; beside a run that scored fewer tasks it would
    compare different things, so means are always recomputed over the tasks actually shown (over
    the whole track they equal the published means to their 3 decimals).
    """
    if not tasks or any(t not in scores for t in tasks):
        return None
    return sum(scores[t] for t in tasks) / len(tasks)
