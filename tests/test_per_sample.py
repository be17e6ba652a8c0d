"""Per-sample results: each metric's resample scorer equals the metric itself, on the full set and on a resample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xares_llm.cli.main import app
from xares_llm.metrics import MetricError, MetricOptions, compute_metric, sample_stats
from xares_llm.metrics.dummies import write_tiny_echecker, write_tiny_sbert
from xares_llm.scoring.per_sample import load_stats, per_sample_path, stats_path
from xares_llm.scoring.predictions import predictions_path, write_predictions

WORDS = ["a", "dog", "barks", "cat", "meows", "rain", "falls", "on", "the", "roof", "car", "passes", "by", "bird"]


def resample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Explicit indices of one resample and the same resample as clip multiplicities [1, n]."""
    idx = np.random.default_rng(seed).integers(0, n, n)
    return idx, np.bincount(idx, minlength=n)[None, :].astype(np.float32)


def sentence(rng: np.random.Generator, low: int = 0, high: int = 7) -> str:
    return " ".join(rng.choice(WORDS, rng.integers(low, high)))


def assert_matches_metric(metric, preds, refs, args=None, options=None, seeds=(1, 2, 3)):
    stats = sample_stats(metric, preds, refs, args, options)
    assert len(stats.records) == len(preds)
    assert stats.full_score() == pytest.approx(compute_metric(metric, preds, refs, args, options).score, abs=1e-6)
    for seed in seeds:
        idx, w = resample(len(preds), seed)
        expected = compute_metric(metric, [preds[i] for i in idx], [refs[i] for i in idx], args, options).score
        assert stats.scorer(w)[0] == pytest.approx(expected, abs=1e-6)
    return stats


def test_accuracy_per_clip_and_resamples():
    rng = np.random.default_rng(0)
    classes = ["dog", "cat", "rain", "Car"]
    refs = [list(rng.choice(classes, rng.integers(1, 3))) for _ in range(60)]
    preds = [str(rng.choice(classes)).upper() for _ in range(60)]
    stats = assert_matches_metric("accuracy", preds, refs)
    first = stats.records[0]
    assert first["pairs"] == len(refs[0]) and first["hits"] == sum(r.lower() == preds[0].lower() for r in refs[0])


def test_map_resamples_recompute_the_corpus_metric():
    rng = np.random.default_rng(1)
    labels = ["dog", "cat", "rain", "car", "bird", "wind"]
    refs = [[";".join(rng.choice(labels, rng.integers(1, 3), replace=False))] for _ in range(50)]
    preds = [";".join(rng.choice([*labels, "unknown"], rng.integers(0, 3), replace=False)) for _ in range(50)]
    stats = assert_matches_metric("map", preds, refs, {"num_classes": 8})
    assert any("labels_outside_vocabulary" in r for r in stats.records)
    assert all({"true_positives", "false_positives", "false_negatives"} <= set(r) for r in stats.records)


@pytest.mark.parametrize("metric", ["iwer", "icer"])
def test_edit_rates_sum_edits_over_the_resampled_corpus(metric):
    rng = np.random.default_rng(2)
    refs = [[sentence(rng)] for _ in range(40)] + [[""], ["the dog", "a dog"]]
    preds = [sentence(rng) for _ in range(40)] + ["a bird", ""]
    stats = assert_matches_metric(metric, preds, refs, seeds=range(1, 8))
    empty = stats.records[40]
    assert empty["reference_units"] == 0 and empty["error_rate"] is None and empty["insertions"] > 0


def test_edit_rate_of_an_all_empty_resample_follows_the_metric():
    stats = sample_stats("iwer", ["", "noise"], [[""], [""]])
    assert stats.scorer(np.array([[2.0, 0.0], [0.0, 2.0]], dtype=np.float32)).tolist() == [1.0, 0.0]


@pytest.fixture(scope="module")
def caption_options(tmp_path_factory):
    base = tmp_path_factory.mktemp("captions")
    sbert = write_tiny_sbert(base / "sbert", WORDS, initializer_range=0.5)
    return base, sbert


def caption_data(n: int = 30):
    rng = np.random.default_rng(3)
    refs = [[sentence(rng, 2), sentence(rng, 2)] for _ in range(n)]
    preds = [refs[i][0] if i % 3 == 0 else sentence(rng, 2) for i in range(n)]
    return preds, refs


def test_fense_per_sample_with_an_error_checker(caption_options):
    base, sbert = caption_options
    checker = write_tiny_echecker(base / "echecker.ckpt", sbert, last_logit_scale=5.0, last_logit_bias=1.0)
    options = MetricOptions(sbert=str(sbert), echecker=str(checker), device="cpu")
    preds, refs = caption_data()
    stats = assert_matches_metric("fense", preds, refs, options=options)
    assert {round(r["penalty"], 6) for r in stats.records} == {1.0, 0.1}  # some captions flagged, some not
    assert len(stats.records[0]["pair_scores"]) == 2


def test_date_resamples_recompute_discrimination_on_the_resample(caption_options):
    """Full set: equal to the metric. A resample: equal to DATE's discrimination run on the resampled
    rows with the embeddings of the whole set (the TF-IDF weighting is held fixed, by design)."""
    from xares_llm.metrics.caption_models import load_caption_models
    from xares_llm.metrics.date import DELTA_LONG, HARMONIC_EPS, discriminability, embed_corpus
    from xares_llm.metrics.text import norm

    _, sbert = caption_options
    options = MetricOptions(sbert=str(sbert), echecker="none", device="cpu")
    preds, refs = caption_data()
    stats = sample_stats("date", preds, refs, {}, options)
    assert stats.full_score() == pytest.approx(compute_metric("date", preds, refs, {}, options).score, abs=1e-6)
    assert {"similarity", "discrimination", "date"} <= set(stats.records[0])

    models = load_caption_models(options)
    z_cand = embed_corpus(models, [norm(p) for p, rs in zip(preds, refs, strict=True) for _ in rs], "c")
    z_ref = embed_corpus(models, [norm(r) for rs in refs for r in rs], "r")
    for seed in (1, 2):
        idx, w = resample(len(preds), seed)
        rows = torch.tensor([2 * i + k for i in idx for k in range(2)])  # each clip has 2 captions
        s, d = discriminability(z_cand[rows], z_ref[rows], torch.ones(len(rows)), DELTA_LONG, torch.device("cpu"))
        expected = float((2 * s * d / (s + d + HARMONIC_EPS)).mean())
        assert stats.scorer(w)[0] == pytest.approx(expected, abs=1e-5)


def test_score_writes_per_sample_files(tmp_path):
    run = tmp_path / "run"
    rows = [
        {"task": "esc50", "key": f"k{i}", "prediction": p, "references": [r]}
        for i, (p, r) in enumerate([("Dog", "dog"), ("cat", "rain"), ("rain", "rain")])
    ]
    write_predictions(predictions_path(run, "esc50"), rows)
    asr = [{"task": "librispeech", "key": "u0", "prediction": "the cat sat", "references": ["the cat sat down"]}]
    write_predictions(predictions_path(run, "librispeech"), asr)
    result = CliRunner().invoke(app, ["score", str(run)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in per_sample_path(run, "esc50").read_text().splitlines()]
    assert [r["key"] for r in lines] == ["k0", "k1", "k2"] and [r["correct"] for r in lines] == [1.0, 0.0, 1.0]
    assert lines[1]["prediction"] == "cat" and lines[1]["references"] == ["rain"]
    (utterance,) = [json.loads(line) for line in per_sample_path(run, "librispeech").read_text().splitlines()]
    assert utterance["deletions"] == 1 and utterance["reference_units"] == 4 and utterance["error_rate"] == 0.25


def test_score_and_report_run_the_sentence_model_once(caption_options, tmp_path, monkeypatch):
    """`xares score` encodes each caption corpus once (score, per-sample file and saved statistics from
    one pass); `xares report` resamples the saved statistics and encodes nothing, with the same intervals
    as a report that has to compute them (a run scored before they were saved)."""
    from xares_llm.metrics.caption_models import SentenceEncoder

    _, sbert = caption_options
    preds, refs = caption_data(12)
    run = tmp_path / "run"
    for task in ("clotho", "mecat"):
        rows = [
            {"task": task, "key": f"k{i}", "prediction": p, "references": r}
            for i, (p, r) in enumerate(zip(preds, refs, strict=True))
        ]
        write_predictions(predictions_path(run, task), rows)
    calls = []
    embed = SentenceEncoder.embed
    monkeypatch.setattr(SentenceEncoder, "embed", lambda self, *a, **k: calls.append(1) or embed(self, *a, **k))
    options = MetricOptions(sbert=str(sbert), echecker="none")
    for metric in ("fense", "date"):
        compute_metric(metric, preds, refs, {}, options)
    one_pass = len(calls)
    assert one_pass == 4  # candidates and references, for each metric

    flags = ["--sbert", str(sbert), "--echecker", "none"]
    result = CliRunner().invoke(app, ["score", str(run), *flags])
    assert result.exit_code == 0, result.output
    assert len(calls) == 2 * one_pass
    report = ["report", str(run), "--format", "md", "--resamples", "50", *flags]
    result = CliRunner().invoke(app, [*report, "--out", str(tmp_path / "saved")])
    assert result.exit_code == 0, result.output
    assert len(calls) == 2 * one_pass  # the report ran no sentence model

    for saved in (run / "per_sample").glob("*.stats.npz"):
        saved.unlink()
    result = CliRunner().invoke(app, [*report, "--out", str(tmp_path / "computed")])
    assert result.exit_code == 0, result.output
    assert len(calls) == 3 * one_pass  # without saved statistics it computes them
    saved_md, computed_md = ((tmp_path / d / "report.md").read_text() for d in ("saved", "computed"))
    assert saved_md == computed_md and "[" in saved_md


def test_saved_statistics_of_other_predictions_are_not_used(tmp_path):
    run = tmp_path / "run"
    rows = [{"task": "esc50", "key": f"k{i}", "prediction": p, "references": ["dog"]} for i, p in enumerate("ab")]
    write_predictions(predictions_path(run, "esc50"), rows)
    assert CliRunner().invoke(app, ["score", str(run)]).exit_code == 0
    assert load_stats(run, "esc50", "accuracy", {}).full_score() == 0.0
    assert load_stats(run, "esc50", "map", {"num_classes": 2}) is None  # scored by another metric
    write_predictions(predictions_path(run, "esc50"), [{**rows[0], "prediction": "dog"}, rows[1]])
    assert load_stats(run, "esc50", "accuracy", {}) is None  # predictions changed since scoring
    assert CliRunner().invoke(app, ["score", str(run)]).exit_code == 0
    stats = load_stats(run, "esc50", "accuracy", {})
    assert stats.full_score() == 0.5 and stats.records[0] == {"correct": 1.0, "hits": 1, "pairs": 1}
    stats_path(run, "esc50").write_bytes(b"not a zip file")
    with pytest.raises(MetricError, match=r"esc50\.stats\.npz: unreadable per-clip statistics"):
        load_stats(run, "esc50", "accuracy", {})


@pytest.mark.parametrize("metric", ["accuracy", "map", "iwer"])
def test_restricted_to_some_clips_scores_as_the_metric_on_those_clips(metric):
    """The report's paired difference over the clips two runs share: the others weigh zero."""
    rng = np.random.default_rng(4)
    labels = ["dog", "cat", "rain", "car", "bird"]
    refs = [[";".join(rng.choice(labels, rng.integers(1, 3), replace=False))] for _ in range(40)]
    preds = [";".join(rng.choice(labels, rng.integers(0, 3), replace=False)) for _ in range(40)]
    args = {"num_classes": 6} if metric == "map" else {}
    keep = sorted(rng.choice(40, 25, replace=False).tolist())
    full = sample_stats(metric, preds, refs, args)
    restricted = full.restricted(keep)
    subset = sample_stats(metric, [preds[i] for i in keep], [refs[i] for i in keep], args)
    assert restricted.clips == 25 and restricted.records == [full.records[i] for i in keep]
    assert restricted.full_score() == pytest.approx(subset.full_score(), abs=1e-12)
    w = np.random.default_rng(5).integers(0, 3, (4, 25)).astype(np.float32)
    assert restricted.scorer(w) == pytest.approx(subset.scorer(w), abs=1e-12)
