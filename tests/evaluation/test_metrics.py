import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from modernbert_glue.evaluation.metrics import (
    accuracy_by_length,
    bootstrap_ci,
    calibration,
    classification_metrics,
    confusion_matrix,
    mcnemar,
    paired_bootstrap_metric,
    regression_metrics,
)


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    preds = np.where(rng.random(300) < 0.8, labels, 1 - labels)
    m = classification_metrics(labels, preds)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert m["f1"] == pytest.approx(f1_score(labels, preds))  # GLUE's F1: the positive class
    assert m["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(labels, preds))
    assert m["n"] == 300
    assert confusion_matrix(labels, preds) == [[int(np.sum((labels == i) & (preds == j))) for j in (0, 1)] for i in (0, 1)]


def test_degenerate_predictions_match_scikit_learn():
    labels = np.array([0, 1, 1, 0, 1])
    preds = np.ones(5, dtype=int)
    m = classification_metrics(labels, preds)
    assert m["mcc"] == matthews_corrcoef(labels, preds) == 0.0
    assert m["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro", zero_division=0))
    assert m["f1"] == pytest.approx(f1_score(labels, preds, zero_division=0))


@pytest.mark.parametrize("seed", range(3))
def test_three_classes_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 400)
    preds = np.where(rng.random(400) < 0.7, labels, rng.integers(0, 3, 400))
    m = classification_metrics(labels, preds, 3)
    assert "f1" not in m  # no positive class among three
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert m["f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(labels, preds))
    ci = bootstrap_ci(labels, preds, num_labels=3, resamples=500)
    for k in ("accuracy", "f1_macro", "mcc"):
        assert ci[k][0] <= m[k] <= ci[k][1]


def test_regression_metrics_match_scipy():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    labels = np.round(rng.uniform(0, 5, 300), 1)  # ties, as STS-B's scores have
    preds = labels + rng.normal(0, 1.0, 300)
    m = regression_metrics(labels, preds)
    assert m["pearson"] == pytest.approx(pearsonr(labels, preds)[0])
    assert m["spearman"] == pytest.approx(spearmanr(labels, preds)[0])
    assert m["mae"] == pytest.approx(np.abs(labels - preds).mean())
    ci = bootstrap_ci(labels, preds, regression=True, resamples=500)
    for k in ("pearson", "spearman"):
        assert ci[k][0] <= m[k] <= ci[k][1]
    assert bootstrap_ci(labels, labels * 0.5, regression=True, resamples=50)["spearman"] == pytest.approx([1.0, 1.0])


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    widths = []
    for n in (200, 3200):
        labels = rng.integers(0, 2, n)
        preds = np.where(rng.random(n) < 0.85, labels, 1 - labels)
        point = classification_metrics(labels, preds)
        ci = bootstrap_ci(labels, preds, resamples=1000, seed=1)
        for k in ("accuracy", "f1", "f1_macro", "mcc"):
            assert ci[k][0] <= point[k] <= ci[k][1], (k, ci[k], point[k])
        widths.append(ci["accuracy"][1] - ci["accuracy"][0])
    assert widths[1] < widths[0] / 2  # ~1/sqrt(16) = 1/4 as wide
    assert bootstrap_ci(labels, preds, seed=3) == bootstrap_ci(labels, preds, seed=3)  # seeded


def test_mcnemar_worked_example():
    # 100 examples: both right 60, only A right 25, only B right 9, both wrong 6.
    a = np.array([1] * 60 + [1] * 25 + [0] * 9 + [0] * 6, bool)
    b = np.array([1] * 60 + [0] * 25 + [1] * 9 + [0] * 6, bool)
    r = mcnemar(a, b)
    assert (r["only_a"], r["only_b"]) == (25, 9)
    assert r["chi2"] == pytest.approx((abs(25 - 9) - 1) ** 2 / 34)  # 225/34 = 6.618
    assert r["p_chi2"] == pytest.approx(0.01010, abs=1e-4)
    assert r["p_exact"] == pytest.approx(0.009041, abs=1e-5)  # 2 * P(Binomial(34, 1/2) <= 9)
    assert mcnemar(a, a)["p_exact"] == 1.0


def test_mcnemar_on_a_large_dev_set_is_quick_and_exact_where_it_matters():
    """QQP's 40,430 dev rows between two weak systems: tens of thousands of discordant pairs."""
    import time

    from scipy.stats import binomtest

    rng = np.random.default_rng(0)
    a, b = rng.random(40_430) < 0.5, rng.random(40_430) < 0.5
    began = time.perf_counter()
    r = mcnemar(a, b)
    assert time.perf_counter() - began < 2  # the big-integer sum ran past two minutes on 40,000 pairs
    n, k = r["only_a"] + r["only_b"], min(r["only_a"], r["only_b"])
    assert n > 15_000 and r["p_exact"] == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-9)
    tiny = mcnemar([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0] * 10)  # 10 discordant, all one way: 2 / 2**10
    assert tiny["p_exact"] == pytest.approx(2 / 1024, rel=1e-12)


def test_paired_bootstrap_of_accuracy_sign_and_interval():
    labels = np.ones(100, int)
    a = np.array([1] * 90 + [0] * 10)
    b = np.array([1] * 70 + [0] * 30)
    r = paired_bootstrap_metric(labels, a, b, "accuracy", seed=0)
    assert r["difference"] == pytest.approx(0.2)
    assert r["ci"][0] > 0 and r["p"] < 0.01
    same = paired_bootstrap_metric(labels, a, a, "accuracy")
    assert same["difference"] == 0 and same["p"] == 1.0


def test_calibration_perfect_and_overconfident():
    labels = np.array([1, 1, 0, 0])
    sure_right = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert calibration(labels, sure_right)["ece"] == pytest.approx(0.0)
    sure_wrong = sure_right[::-1]
    result = calibration(labels, sure_wrong, bins=10)
    assert result["ece"] == pytest.approx(1.0)
    assert sum(b["count"] for b in result["bins"]) == 4 and len(result["bins"]) == 10


def test_accuracy_by_length_buckets():
    sentences = ["a b", "a b c d e f g", "x " * 25]
    out = accuracy_by_length(sentences, [1, 0, 1], [1, 1, 1])
    by_name = {row["words"]: row for row in out}
    assert by_name["1-5"] == {"words": "1-5", "count": 1, "accuracy": 1.0}
    assert by_name["6-10"]["accuracy"] == 0.0 and by_name["21-30"]["count"] == 1
    assert by_name["31+"]["accuracy"] is None


def test_macro_f1_counts_only_classes_that_occur():
    assert classification_metrics([0, 1, 0, 1], [0, 1, 0, 1], 3)["f1_macro"] == 1.0
    assert classification_metrics([0, 0, 0], [0, 0, 0], 2)["f1_macro"] == f1_score([0, 0, 0], [0, 0, 0], average="macro")


@pytest.mark.parametrize("metric,regression", [("mcc", False), ("f1", False), ("pearson", True), ("spearman", True)])
def test_paired_bootstrap_metric_difference_interval_and_p(metric, regression):
    """MCC, F1 and correlations (where McNemar's test does not apply): the observed difference is the metric's
    difference, its interval holds it, a clearly better system gets a small p and a system against itself p = 1."""
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    if regression:
        labels = rng.uniform(0, 5, 400)
        good, bad = labels + rng.normal(0, 0.5, 400), labels + rng.normal(0, 3.0, 400)
        reference = {"pearson": lambda p: pearsonr(labels, p)[0], "spearman": lambda p: spearmanr(labels, p)[0]}
    else:
        labels = rng.integers(0, 2, 400)
        good = np.where(rng.random(400) < 0.9, labels, 1 - labels)
        bad = np.where(rng.random(400) < 0.6, labels, 1 - labels)
        reference = {"mcc": lambda p: matthews_corrcoef(labels, p), "f1": lambda p: f1_score(labels, p)}
    result = paired_bootstrap_metric(labels, good, bad, metric, regression=regression, resamples=500)
    assert result["metric"] == metric
    assert result["difference"] == pytest.approx(reference[metric](good) - reference[metric](bad))
    assert 0 < result["ci"][0] <= result["difference"] <= result["ci"][1] and result["p"] < 0.01
    same = paired_bootstrap_metric(labels, good, good, metric, regression=regression, resamples=200)
    assert same["difference"] == 0 and same["ci"] == [0.0, 0.0] and same["p"] == 1.0


def test_holm_adjusts_each_p_for_the_tests_made_together():
    from modernbert_glue.evaluation.metrics import holm

    # sorted 0.01, 0.02, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.02), max(0.04, 1 * 0.04); NaN stays out of the count
    assert holm([0.04, 0.01, float("nan"), 0.02]) == pytest.approx([0.04, 0.03, float("nan"), 0.04], nan_ok=True)
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([0.008]) == [0.008] and holm([]) == []


def test_a_difference_that_is_not_a_number_has_no_p_and_a_nan_label_is_refused():
    from modernbert_glue.evaluation.metrics import classification_metrics, paired_bootstrap_metric

    y = np.linspace(0, 5, 50)
    broken = y.copy()
    broken[3] = np.nan
    result = paired_bootstrap_metric(y, y + 0.1, broken, "pearson", regression=True)
    assert np.isnan(result["difference"]) and np.isnan(result["p"])
    with pytest.raises(ValueError, match="labels hold a value that is not a class"):
        classification_metrics(np.array([0, 1, np.nan]), np.array([0, 1, 1]))


def test_each_metric_has_one_range_and_an_interval_is_cut_to_it():
    from modernbert_glue.evaluation.metrics import clip_interval, metric_range

    assert metric_range("accuracy") == metric_range("eval_mismatched_accuracy") == (0.0, 1.0)
    assert metric_range("test_f1_macro") == (0.0, 1.0) and metric_range("eval_mcc") == (-1.0, 1.0)
    assert metric_range("spearman") == (-1.0, 1.0) and metric_range("mae") == (0.0, float("inf"))
    assert metric_range("accuracy/mcc") == (-1.0, 1.0)  # a mean of two: the union
    assert metric_range("train_seconds") == (float("-inf"), float("inf"))  # not a metric: left alone
    assert clip_interval([-0.1, 1.2], "accuracy") == [0.0, 1.0] and clip_interval(None, "accuracy") is None
    assert clip_interval([-1.5, 0.4], "pearson") == pytest.approx([-1.0, 0.4])


def test_a_t_interval_over_seeds_stays_inside_the_metrics_range():
    """Two RTE seeds 10 points apart gave an interval of [-8.5, 118.5] points (the glue table's "[1.2, 107.1]")."""
    from modernbert_glue.training.runs import mean_interval

    assert mean_interval([0.5, 0.6])[0] < 0 < 1 < mean_interval([0.5, 0.6])[1]  # the t-interval itself
    assert mean_interval([0.5, 0.6], metric="accuracy") == pytest.approx([0.0, 1.0])
    assert mean_interval([0.5, 0.6], metric="eval_accuracy") == pytest.approx([0.0, 1.0])
    assert mean_interval([-0.9, 0.9], metric="mcc") == pytest.approx([-1.0, 1.0])
    low, high = mean_interval([0.1, 0.3], metric="mae")  # an error: cut at 0 only
    assert low == 0.0 and high == pytest.approx(0.2 + 12.7062 * 0.1, rel=1e-4)
    narrow = mean_interval([0.80, 0.81, 0.82], metric="accuracy")
    assert 0.77 < narrow[0] < 0.81 < narrow[1] < 0.85  # inside the range: unchanged
    assert mean_interval([0.5]) is None and mean_interval([0.5, float("nan")]) is None


def test_too_few_examples_give_no_correlation_and_no_interval():
    """One example gave the interval [0, 0] (or [1, 1]); two gave a Pearson of -1 or 1, one of 0."""
    from modernbert_glue.evaluation.metrics import evaluation_report

    one = evaluation_report(["a b"], [1], [[0.2, 0.8]], resamples=50)["scalars"]
    assert one["accuracy"] == 1.0 and one["n"] == 1 and one["accuracy_ci"] is None and one["mcc_ci"] is None
    for n in (1, 2):
        pairs, labels = [("a", "b")] * n, [1.0, 3.0][:n]
        scalars = evaluation_report(pairs, labels, [[2.5], [2.0]][:n], regression=True, resamples=50)["scalars"]
        assert scalars["pearson"] is None and scalars["spearman"] is None and scalars["pearson_ci"] is None
        assert scalars["mae"] == pytest.approx(np.mean(np.abs(np.array(labels) - [2.5, 2.0][:n])))
    three = evaluation_report([("a", "b")] * 3, [1.0, 3.0, 2.0], [[2.5], [2.0], [2.2]], regression=True,
                              resamples=50)["scalars"]
    from scipy.stats import pearsonr

    assert three["pearson"] == pytest.approx(pearsonr([1.0, 3.0, 2.0], [2.5, 2.0, 2.2])[0])
    assert len(three["pearson_ci"]) == 2
    two = evaluation_report(["a", "b"], [1, 0], [[0.2, 0.8], [0.9, 0.1]], resamples=50)["scalars"]
    assert two["accuracy_ci"] is not None  # two examples: an interval


def test_a_paired_test_of_too_few_examples_has_no_difference_or_interval():
    y = np.array([1.0, 3.0])
    result = paired_bootstrap_metric(y, y + 0.1, y[::-1], "pearson", regression=True)
    assert np.isnan(result["difference"]) and result["ci"] is None and np.isnan(result["p"])
    one = paired_bootstrap_metric(np.array([1]), np.array([1]), np.array([0]), "accuracy", resamples=50)
    assert one["difference"] == 1.0 and one["ci"] is None
