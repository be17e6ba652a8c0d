"""The report as rows: tasks grouped by track and domain, track means, the overall mean, reference columns.

Every mean (a run's, a baseline's, a difference's) is over one set of tasks: those of the track that
every compared run scored, so a one-task run is never shown beside a published 15-task mean. Cells
carry the score and its bootstrap interval; with two runs a column holds their paired difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xares_llm.metrics import MetricError, MetricOptions, SampleStats, sample_stats
from xares_llm.report.bootstrap import RESAMPLES, Estimate, bootstrap, mean_estimate, paired_difference
from xares_llm.report.load import ResultDir
from xares_llm.report.seeds import SeedGroup, seed_groups
from xares_llm.scoring.baselines import BASELINES, CHALLENGE_PUBLIC, DOMAINS, baseline_mean, task_domain
from xares_llm.scoring.per_sample import load_stats

TRACK_ORDER = ("A", "B", "demo")


@dataclass
class Row:
    kind: str  # "task", "mean" (one track) or "overall"
    label: str
    track: str
    domain: str = ""
    metric: str = ""
    n_samples: list[int | None] = field(default_factory=list)
    cells: list[Estimate | None] = field(default_factory=list)  # one per run, None where it lacks the task
    difference: Estimate | None = None  # second run minus first, paired (two runs only)
    baselines: dict[str, float | None] = field(default_factory=dict)
    challenge: tuple[float, float] | None = None  # (best, median) public score of the challenge's teams
    tasks: list[str] = field(default_factory=list)  # what a mean averages


@dataclass
class Report:
    labels: list[str]
    rows: list[Row]
    baseline_names: list[str]
    challenge: bool
    seed: int
    resamples: int
    notes: list[str] = field(default_factory=list)
    stats: dict[tuple[int, str], SampleStats] = field(default_factory=dict, repr=False)  # (run, task) -> stats
    seed_groups: list[SeedGroup] = field(default_factory=list)  # runs differing only in seed (report/seeds.py)

    @property
    def paired(self) -> bool:
        return len(self.labels) == 2


def task_order(results: list[ResultDir]) -> list[tuple[str, str]]:
    """(task, track) of every task any run scored, by track, then domain, then name."""
    tracks = {name: t.track for r in results for name, t in r.tasks.items()}

    def key(name: str) -> tuple:
        track = tracks[name]
        domain = task_domain(name)
        return (
            TRACK_ORDER.index(track) if track in TRACK_ORDER else len(TRACK_ORDER),
            track,
            DOMAINS.index(domain) if domain in DOMAINS else len(DOMAINS),
            name,
        )

    return [(name, tracks[name]) for name in sorted(tracks, key=key)]


def build_report(
    results: list[ResultDir],
    baselines: bool = False,
    challenge: bool = False,
    seed: int = 0,
    resamples: int = RESAMPLES,
    options: MetricOptions | None = None,
) -> Report:
    names = list(BASELINES) if baselines else []
    report = Report([r.label for r in results], [], names, challenge, seed, resamples)
    by_track: dict[str, list[Row]] = {}
    for task, track in task_order(results):
        row = Row("task", task, track, task_domain(task))
        for i, result in enumerate(results):
            entry = result.tasks.get(task)
            row.metric = row.metric or (entry.metric if entry else "")
            row.n_samples.append(entry.n_samples if entry else None)
            row.cells.append(_task_estimate(report, i, result, task, options) if entry else None)
        if report.paired and all(row.cells):
            row.difference = _difference(report, results, task, options)
        row.baselines = {n: BASELINES[n].get(task) for n in names}
        row.challenge = CHALLENGE_PUBLIC.get(task) if challenge else None
        by_track.setdefault(track, []).append(row)
    common_all: list[Row] = []
    for track, rows in by_track.items():
        report.rows += rows
        common = [r for r in rows if all(r.cells)]
        common_all += common
        if common:
            report.rows.append(_mean_row("mean", f"mean {track}", track, common, names, report))
        skipped = [r.label for r in rows if not all(r.cells)]
        if skipped:
            report.notes.append(f"mean {track} leaves out {', '.join(skipped)}: not scored by every run")
    if len(by_track) > 1 and common_all:
        report.rows.append(_mean_row("overall", "overall", "", common_all, names, report))
    # a baseline or challenge column with nothing for these tasks is dropped, not shown empty
    report.baseline_names = [n for n in names if any(r.baselines.get(n) is not None for r in report.rows)]
    report.challenge = challenge and any(r.challenge for r in report.rows)
    report.seed_groups = seed_groups(report.rows, results)
    costs = [r.cost.get("device_hours") for r in results]
    if any(c is not None for c in costs):  # scores.json's cost (xares_llm/scoring/cost.py), per run
        cells = [None if c is None else Estimate(c) for c in costs]
        report.rows.append(Row("cost", "cost (device-hours)", "", n_samples=[None] * len(costs), cells=cells))
    return report


def _mean_row(kind: str, label: str, track: str, rows: list[Row], names: list[str], report: Report) -> Row:
    tasks = [r.label for r in rows]
    mean = Row(kind, f"{label} ({len(tasks)} task{'s' * (len(tasks) != 1)})", track, tasks=tasks)
    mean.cells = [mean_estimate([r.cells[i] for r in rows]) for i in range(len(report.labels))]
    if report.paired:
        diffs = [r.difference for r in rows]
        mean.difference = mean_estimate(diffs) if all(diffs) else None
    mean.baselines = {n: baseline_mean(BASELINES[n], tasks) for n in names}
    return mean


def _stats(report: Report, index: int, result: ResultDir, task: str, options: MetricOptions | None) -> SampleStats:
    """Per-sample stats of one run's task, once per report: those `xares score` saved, else computed
    from the predictions (runs scored before they were saved; caption metrics then run their models)."""
    if (index, task) not in report.stats:
        entry = result.tasks[task]
        try:
            stats = load_stats(result.path, task, entry.metric, entry.args)
        except MetricError as e:
            report.notes.append(f"{result.label}/{task}: {e}; recomputed")
            stats = None
        if stats is None:
            preds = [r["prediction"] for r in entry.rows]
            refs = [r["references"] for r in entry.rows]
            stats = sample_stats(entry.metric, preds, refs, entry.args, options)
        report.stats[index, task] = stats
    return report.stats[index, task]


def _task_estimate(report: Report, index: int, result: ResultDir, task: str, options: MetricOptions | None) -> Estimate:
    entry = result.tasks[task]
    where = f"{result.label}/{task}"
    if not entry.rows:
        report.notes.append(f"{where}: no predictions file, so no interval")
        return Estimate(entry.score)
    try:
        stats = _stats(report, index, result, task, options)
    except (MetricError, KeyError) as e:
        report.notes.append(f"{where}: no interval ({e})")
        return Estimate(entry.score)
    estimate = bootstrap(stats, task, report.seed, report.resamples)
    if abs(estimate.score - entry.score) > 1e-4:
        report.notes.append(
            f"{where}: the predictions give {estimate.score:.4f} but scores.json says {entry.score:.4f}; "
            f"rescore with `xares score {result.path}` (the table shows the recorded score)"
        )
    estimate.score = entry.score
    return estimate


def _difference(report: Report, results: list[ResultDir], task: str, options: MetricOptions | None) -> Estimate | None:
    """Paired difference (second - first) over the clips both runs scored, matched by key.

    The other clips weigh zero in every resample, so no metric runs again (DATE keeps the TF-IDF
    weights of each run's whole test set, as it does on every resample)."""
    first, second = (r.tasks[task] for r in results)
    if not first.rows or not second.rows:
        return None
    keys_a, keys_b = [r["key"] for r in first.rows], [r["key"] for r in second.rows]
    try:
        if keys_a == keys_b:
            stats = [_stats(report, i, r, task, options) for i, r in enumerate(results)]
        else:
            positions = [{k: i for i, k in enumerate(keys)} for keys in (keys_a, keys_b)]
            common = [k for k in keys_a if k in positions[1]]
            if not common:
                report.notes.append(f"{task}: the two runs share no test clip key, so no paired difference")
                return None
            if len(common) < max(len(keys_a), len(keys_b)):
                report.notes.append(f"{task}: difference over the {len(common)} clips both runs scored")
            stats = [
                _stats(report, i, r, task, options).restricted([where[k] for k in common])
                for i, (r, where) in enumerate(zip(results, positions, strict=True))
            ]
    except (MetricError, KeyError) as e:
        report.notes.append(f"{task}: no paired difference ({e})")
        return None
    return paired_difference(stats[0], stats[1], task, report.seed, report.resamples)
