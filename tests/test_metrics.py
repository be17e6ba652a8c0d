"""Metrics with hand-computed values for every edge case of the reference semantics, and the registry's contract."""

from __future__ import annotations

import pytest

from xares_llm.metrics import MetricError, compute_metric, get_metric, metric_names, norm, register_metric

# --- norm -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  a \t b\n c  ", "a b c"),
        ("Twenty-one dogs", "twenty one dogs"),  # '-' becomes a space, not nothing
        ("ＡＢＣ　ｄｅｆ！", "abc def"),  # NFKC: full-width Latin, ideographic space and '!' become ASCII
        ("你好，世界。", "你好世界。"),  # NFKC maps the full-width comma to ',', which goes; '。' stays
        ("《三体》“好”、", "《三体》“好”、"),  # CJK punctuation NFKC leaves alone is not ASCII: kept
        ("it's (a) test_case.", "its a testcase"),
        ("!!!", ""),
    ],
)
def test_norm(text: str, expected: str) -> None:
    assert norm(text) == expected


def test_norm_keeps_punctuation_for_map() -> None:
    assert norm("Motor_vehicle_(road); Dog-Bark", remove_punctuation=False) == "motor_vehicle_(road); dog bark"


# --- accuracy ---------------------------------------------------------------------------------------


def test_accuracy_after_norm() -> None:
    result = compute_metric("accuracy", ["Dog.", "cat", "", "BIRD"], [["dog"], ["Cat!"], ["bird"], ["bird"]])
    assert result.score == pytest.approx(3 / 4)
    assert result.settings["metric"] == "accuracy"


def test_accuracy_scores_each_reference_as_a_sample() -> None:
    # The reference system expands a list label into one sample per element.
    assert compute_metric("accuracy", ["a", "b"], [["a", "b", "c"], ["b"]]).score == pytest.approx(2 / 4)


# --- mAP --------------------------------------------------------------------------------------------


def test_map_split_without_strip() -> None:
    # "dog; cat" -> ["dog", " cat"]: " cat" is not a reference label and is dropped.
    # dog: AP 1. cat: y_true [1,1,0], y_pred [0,1,0] -> P=1, R=1/2, prevalence 2/3 -> 1/2 + 2/3 * 1/2 = 5/6.
    # bird: AP 1. Mean over 3 classes = (1 + 5/6 + 1) / 3.
    refs = [["dog;cat"], ["cat"], ["bird"]]
    result = compute_metric("map", ["dog; cat", "cat", "bird"], refs, {"num_classes": 3})
    assert result.score == pytest.approx((1 + 5 / 6 + 1) / 3)
    assert compute_metric("map", ["dog;cat", "cat", "bird"], refs, {"num_classes": 3}).score == pytest.approx(1.0)


def test_map_counts_all_zero_columns() -> None:
    # Same as above, but 5 columns: 2 all-zero columns beyond the 3-label vocabulary score AP 0.
    refs = [["dog;cat"], ["cat"], ["bird"]]
    result = compute_metric("map", ["dog; cat", "cat", "bird"], refs, {"num_classes": 5})
    assert result.score == pytest.approx((1 + 5 / 6 + 1) / 5)
    assert result.settings["vocabulary_size"] == 3


def test_map_drops_unknown_labels_and_keeps_punctuation() -> None:
    # preds -> {dog}, {"cat."} (punctuation kept, unknown: dropped), {dog} (unicorn dropped), {""} (dropped).
    # dog: y_true [1,0,1,0] = y_pred -> AP 1. cat: never predicted -> AP = prevalence = 2/4.
    # bird: never predicted -> AP = 1/4. One all-zero column -> 0. Mean = 1.75 / 4.
    preds = ["Dog", "cat.", "dog;unicorn", ""]
    refs = [["dog"], ["cat"], ["dog;cat"], ["bird"]]
    assert compute_metric("map", preds, refs, {"num_classes": 4}).score == pytest.approx(1.75 / 4)


def test_map_rejects_a_vocabulary_larger_than_num_classes() -> None:
    with pytest.raises(MetricError, match="num_classes"):
        compute_metric("map", ["a", "b"], [["a"], ["b"]], {"num_classes": 1})


# --- iWER / iCER ------------------------------------------------------------------------------------


def test_iwer_is_corpus_level() -> None:
    # 3 deletions over 6 + 2 reference words: WER 3/8 (a per-utterance mean would give 1/4).
    result = compute_metric("iwer", ["the cat sat", "hello world"], [["The cat sat on the mat."], ["hello, world"]])
    assert result.score == pytest.approx(1 - 3 / 8)
    assert result.settings["deletions"] == 3


def test_iwer_is_clipped_at_zero() -> None:
    # 1 substitution + 5 insertions over 1 reference word: WER 6 -> iWER max(0, -5) = 0.
    assert compute_metric("iwer", ["a b c d e f"], [["x"]]).score == 0.0


def test_empty_prediction() -> None:
    assert compute_metric("iwer", ["", "a b"], [["a b"], ["a b"]]).score == pytest.approx(0.5)
    assert compute_metric("icer", [""], [["ab"]]).score == 0.0
    assert compute_metric("accuracy", [""], [["a"]]).score == 0.0
    assert compute_metric("map", [""], [["a"]], {"num_classes": 2}).score == pytest.approx(0.5)  # AP = prevalence 1


def test_icer_counts_spaces() -> None:
    # "ab cd" has 5 characters including the space; "abcd" deletes it: CER 1/5.
    assert compute_metric("icer", ["abcd"], [["ab cd"]]).score == pytest.approx(0.8)


def test_icer_keeps_cjk_punctuation() -> None:
    # "你好，世界。" -> "你好世界。" (5 characters, '。' kept): a prediction without '。' has one deletion.
    assert compute_metric("icer", ["你好世界"], [["你好，世界。"]]).score == pytest.approx(0.8)
    assert compute_metric("icer", ["你好世界。"], [["你好，世界。"]]).score == pytest.approx(1.0)


# --- registry ---------------------------------------------------------------------------------------


def test_registry_names() -> None:
    assert {"accuracy", "map", "iwer", "icer", "fense", "date"} <= set(metric_names())


def test_unknown_metric_lists_the_choices() -> None:
    with pytest.raises(KeyError, match=r"Did you mean 'accuracy'.*Choices: accuracy, map"):
        get_metric("acuracy")


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_metric("accuracy", lambda predictions, references: None)


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("accuracy", {"num_classes": 3}, "unknown argument"),
        ("map", {}, "missing required argument"),
        ("map", {"num_classes": 0}, "positive integer"),
    ],
)
def test_bad_arguments(name: str, args: dict, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        compute_metric(name, ["a"], [["a"]], args)


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        (["a", "b"], [["a"]], "must pair up"),
        ([], [], "no samples"),
        (["a"], ["a"], "must be a list"),
        (["a"], [[]], "no reference"),
    ],
)
def test_bad_inputs(predictions: list, references: list, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        compute_metric("accuracy", predictions, references)


@pytest.mark.parametrize("name", ["accuracy", "map", "iwer", "icer"])
def test_perfect_predictions_score_one(name: str) -> None:
    refs = [["Dog;cat"], ["a-b c"], ["你好，世界。"]]
    args = {"num_classes": 4} if name == "map" else {}
    predictions = [r[0] for r in refs]
    assert compute_metric(name, predictions, refs, args).score == pytest.approx(1.0)
    assert compute_metric(name, ["zzz"] * 3, refs, args).score < 1.0


def test_binary_average_precision_equals_scikit_learn() -> None:
    import warnings

    import numpy as np
    from sklearn.metrics import average_precision_score

    from xares_llm.metrics.classification import binary_average_precision

    rng = np.random.default_rng(0)
    for trial in range(50):
        n, c = int(rng.integers(1, 40)), int(rng.integers(1, 8))
        y_true = (rng.random((n, c)) < rng.random()).astype(np.int64)
        y_pred = (rng.random((n, c)) < rng.random()).astype(np.int64)
        y_true[:, 0], y_pred[:, -1] = 0, 1  # a class with no positive; a class predicted everywhere
        if trial % 5 == 0:
            y_pred[:] = 0  # nothing predicted at all
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns on the class with no positive
            expected = average_precision_score(y_true, y_pred, average=None)
        np.testing.assert_allclose(binary_average_precision(y_true, y_pred), np.nan_to_num(expected), atol=1e-12)
