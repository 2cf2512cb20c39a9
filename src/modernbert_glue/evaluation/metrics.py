"""Metrics with their uncertainty: accuracy, F1 (GLUE's: the positive class), macro-F1, MCC, Pearson and
Spearman, bootstrap intervals, paired tests between systems (McNemar, paired bootstrap), calibration and length
buckets.

Classification metrics are computed from confusion counts so that thousands of bootstrap resamples are one
vectorised pass; tests check every value against scikit-learn and scipy.
"""

from __future__ import annotations

import math

import numpy as np

CLASSIFICATION = ("accuracy", "f1", "f1_macro", "mcc")  # f1: the positive class's (binary tasks), as GLUE's
REGRESSION = ("pearson", "spearman")
BOOTSTRAP_RESAMPLES = 1000  # every interval's and paired test's (a p of 0 then means below 2 / 1000)
# What each metric can take: an interval reaching past it (a t-interval over two seeds) is clipped to it
RANGES = {"accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "f1_macro": (0.0, 1.0), "ece": (0.0, 1.0),
          "mcc": (-1.0, 1.0), "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0), "mae": (0.0, math.inf)}
# Fewer points than this and the value is reported as None: a correlation of two points is always -1, 0 or 1,
# and a bootstrap of one example resamples that example only (an interval of width 0)
MIN_CORRELATION_POINTS = 3
MIN_INTERVAL_POINTS = 2


def metric_range(name: str) -> tuple[float, float]:
    """The values metric `name` can take; `name` may carry a metrics.json prefix (eval_mismatched_accuracy) or
    join several metrics averaged together with "/" (accuracy/f1: their union). Unknown: any number."""
    lows, highs = [], []
    for part in name.split("/"):
        known = next((m for m in sorted(RANGES, key=len, reverse=True) if part == m or part.endswith(f"_{m}")), None)
        low, high = RANGES.get(known, (-math.inf, math.inf))
        lows.append(low)
        highs.append(high)
    return min(lows), max(highs)


def clip_interval(interval, metric: str) -> list[float] | None:
    """`interval` [low, high] cut to what `metric` can take (None stays None)."""
    if not interval:
        return None
    low, high = metric_range(metric)
    return [float(min(max(v, low), high)) for v in interval]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits (rows), computed stably."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _confusions(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts [..., true, predicted] for label arrays of shape [..., n] (one per bootstrap resample)."""
    lead = labels.shape[:-1]
    rows = np.arange(int(np.prod(lead, dtype=int))).reshape(lead + (1,)) if lead else 0
    codes = (rows * k * k + labels * k + preds).ravel()
    return np.bincount(codes, minlength=int(np.prod(lead, dtype=int)) * k * k).reshape(lead + (k, k))


def _safe_div(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _from_confusion(c: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from confusion counts [..., k, k]: accuracy, macro-F1, Matthews correlation (Gorodkin's k-class
    form, which is the usual one for two classes) and, for two classes, the F1 of class 1."""
    c = c.astype(float)
    n = c.sum(axis=(-2, -1))
    correct = np.trace(c, axis1=-2, axis2=-1)
    true, pred = c.sum(axis=-1), c.sum(axis=-2)
    diag = np.diagonal(c, axis1=-2, axis2=-1)
    f1_per_class = _safe_div(2 * diag, true + pred)
    mcc_den = np.sqrt((n**2 - (pred**2).sum(-1)) * (n**2 - (true**2).sum(-1)))
    present = (true + pred) > 0  # as scikit-learn: classes in neither labels nor predictions do not count
    out = {"accuracy": _safe_div(correct, n),
           "f1_macro": _safe_div((f1_per_class * present).sum(-1), present.sum(-1)),
           "mcc": _safe_div(correct * n - (true * pred).sum(-1), mcc_den)}
    if c.shape[-1] == 2:
        out["f1"] = f1_per_class[..., 1]
    return out


def classification_metrics(labels, predictions, num_labels: int | None = None) -> dict[str, float]:
    """accuracy, F1 (positive class, binary only), macro-F1 and Matthews correlation, plus n."""
    for name, values in (("labels", labels), ("predictions", predictions)):  # NaN cast to int64 is class 0
        values = np.asarray(values)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"classification {name} hold a value that is not a class (NaN or infinite)")
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    k = num_labels or int(max(labels.max(initial=1), predictions.max(initial=1)) + 1)
    values = _from_confusion(_confusions(labels, predictions, k))
    return {**{m: float(values[m]) for m in CLASSIFICATION if m in values}, "n": int(labels.size)}


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=-1)


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = _centered(x), _centered(y)
    return _safe_div((x * y).sum(-1), np.sqrt((x * x).sum(-1) * (y * y).sum(-1)))


def _centered(x: np.ndarray) -> np.ndarray:
    """x minus its mean, with rounding noise (a constant's deviations of ~1e-16) set to 0, so that a constant
    prediction (the trivial STS-B baseline) correlates exactly 0 with anything, as MCC does for a constant class."""
    centered = x - x.mean(axis=-1, keepdims=True)
    noise = 1e-12 * np.abs(x).max(axis=-1, keepdims=True)
    return np.where(np.abs(centered) <= noise, 0.0, centered)


def _regression_values(labels: np.ndarray, predictions: np.ndarray) -> dict[str, np.ndarray]:
    return {"pearson": _pearson(labels, predictions), "spearman": _pearson(_ranks(labels), _ranks(predictions))}


def regression_metrics(labels, predictions) -> dict[str, float]:
    """Pearson and Spearman correlation (ties ranked by their mean rank), mean absolute error, plus n."""
    labels, predictions = np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float)
    values = _regression_values(labels, predictions)
    return {**{m: float(v) for m, v in values.items()}, "mae": float(np.abs(labels - predictions).mean()),
            "n": int(labels.size)}


def task_metrics(labels, predictions, *, regression: bool = False, num_labels: int | None = None) -> dict:
    """The metrics of a task's kind: regression_metrics or classification_metrics."""
    if regression:
        return regression_metrics(labels, predictions)
    return classification_metrics(labels, predictions, num_labels)


def bootstrap_ci(labels, predictions, *, regression: bool = False, num_labels: int | None = None,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile bootstrap interval for each metric: {"accuracy": [low, high], ...}; one vectorised pass."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, labels.size, size=(resamples, labels.size))
    if regression:
        values = _regression_values(labels[idx].astype(float), predictions[idx].astype(float))
    else:
        labels, predictions = labels.astype(np.int64), predictions.astype(np.int64)
        k = num_labels or int(max(labels.max(initial=1), predictions.max(initial=1)) + 1)
        values = _from_confusion(_confusions(labels[idx], predictions[idx], k))
    tail = (1 - level) / 2 * 100
    return {k: [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] for k, v in values.items()}


def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's test on paired correctness: exact two-sided binomial p on the discordant pairs,
    and the chi-square statistic with continuity correction (and its p) for reference."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    n = only_a + only_b
    if n == 0:
        return {"only_a": 0, "only_b": 0, "p_exact": 1.0, "chi2": 0.0, "p_chi2": 1.0}
    from scipy.stats import binom

    # 2 * P(Binomial(n, 1/2) <= k) from scipy's incomplete beta: a sum of exact big-integer binomial coefficients
    # does not scale to the tens of thousands of discordant rows two weak systems have on QQP or MNLI dev.
    p_exact = min(1.0, 2 * float(binom.cdf(min(only_a, only_b), n, 0.5)))
    chi2 = (abs(only_a - only_b) - 1) ** 2 / n
    p_chi2 = math.erfc(math.sqrt(chi2 / 2))  # survival of chi-square with 1 degree of freedom
    return {"only_a": only_a, "only_b": only_b, "p_exact": p_exact, "chi2": chi2, "p_chi2": p_chi2}


def paired_bootstrap_metric(labels, pred_a, pred_b, metric: str, *, regression: bool = False,
                            num_labels: int | None = None, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                            level: float = 0.95) -> dict:
    """`metric` of a minus that of b over the same examples (MCC, F1, correlations: where McNemar's test on
    correctness does not apply), its bootstrap interval and the share of resamples where the sign flips (p)."""
    labels, pred_a, pred_b = np.asarray(labels), np.asarray(pred_a), np.asarray(pred_b)
    if metric in REGRESSION and labels.size < MIN_CORRELATION_POINTS:  # no correlation known, so no difference
        return {"metric": metric, "difference": math.nan, "ci": None, "p": math.nan}
    idx = np.random.default_rng(seed).integers(0, labels.size, size=(resamples, labels.size))
    if regression:
        def values(p, i):
            return _regression_values(labels[i].astype(float), p[i].astype(float))[metric]
    else:
        k = num_labels or int(max(labels.max(initial=1), pred_a.max(initial=1), pred_b.max(initial=1)) + 1)

        def values(p, i):
            return _from_confusion(_confusions(labels[i].astype(np.int64), p[i].astype(np.int64), k))[metric]
    whole = np.arange(labels.size)[None]
    observed = float(values(pred_a, whole)[0] - values(pred_b, whole)[0])
    diffs = values(pred_a, idx) - values(pred_b, idx)
    tail = (1 - level) / 2 * 100
    flipped = np.mean(diffs <= 0) if observed > 0 else np.mean(diffs >= 0)
    ci = [float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail))]
    return {"metric": metric, "difference": observed, "ci": ci if labels.size >= MIN_INTERVAL_POINTS else None,
            "p": float(min(1.0, 2 * flipped)) if math.isfinite(observed) else math.nan}  # NaN: no difference known


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for the number of tests made together (the finite ones): the
    family-wise error rate stays at the level compared with, however many pairs a report tests."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if math.isfinite(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted


def confusion_matrix(labels, predictions, num_labels: int = 2) -> list[list[int]]:
    """rows: true label, columns: predicted label."""
    m = np.zeros((num_labels, num_labels), dtype=int)
    np.add.at(m, (np.asarray(labels), np.asarray(predictions)), 1)
    return m.tolist()


def calibration(labels, probs, bins: int = 10) -> dict:
    """Expected calibration error of the top-class confidence, and the reliability-diagram bins."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for i in range(bins):
        mask = which == i
        count = int(mask.sum())
        if count:
            acc, conf = float(correct[mask].mean()), float(confidence[mask].mean())
            ece += count / labels.size * abs(acc - conf)
        else:
            acc = conf = None
        table.append({"low": float(edges[i]), "high": float(edges[i + 1]), "count": count,
                      "accuracy": acc, "confidence": conf})
    return {"ece": float(ece), "bins": table}


LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 30), (31, 10_000))


def _words(text) -> int:
    """Length in whitespace-separated words of a text or of both texts of a pair."""
    return len(text.split()) if isinstance(text, str) else sum(len(t.split()) for t in text)


def by_length(texts, labels, predictions, *, regression: bool = False, buckets=LENGTH_BUCKETS) -> list[dict]:
    """Per length bucket (words): accuracy, or for regression the mean absolute error."""
    lengths = np.array([_words(t) for t in texts])
    if regression:
        score, key = np.abs(np.asarray(labels, float) - np.asarray(predictions, float)), "mae"
    else:
        score, key = np.asarray(labels) == np.asarray(predictions), "accuracy"
    out = []
    for low, high in buckets:
        mask = (lengths >= low) & (lengths <= high)
        name = f"{low}-{high}" if high < 10_000 else f"{low}+"
        out.append({"words": name, "count": int(mask.sum()), key: float(score[mask].mean()) if mask.any() else None})
    return out


def accuracy_by_length(sentences, labels, predictions, buckets=LENGTH_BUCKETS) -> list[dict]:
    return by_length(sentences, labels, predictions, buckets=buckets)


WORST_REGRESSION = 100  # the largest errors listed for a regression task


def evaluation_report(texts, labels, scores, *, regression: bool = False, metrics: tuple[str, ...] | None = None,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """Everything we report about one system on one labelled set. `texts`: sentences or (sentence, sentence2)
    pairs; `scores`: class probabilities [n, classes], or predicted values [n, 1] for regression; `metrics`: the
    task's (tasks.Task.metrics: RTE reports accuracy, not F1), all of its kind when None.

    Returns {"scalars": {each metric, n, each metric's `_ci`, ece (classification) or mae (regression)} (None
             where too few examples give it a meaning: with_too_few_as_none),
             "details": {confusion_matrix, calibration, accuracy_by_length} (regression: mae_by_length),
             "misclassified": [{"idx", "sentence"[, "sentence2"], "label", "prediction", "score"}]} — for
    regression the largest errors, with `score` the absolute error.
    """
    scores = np.asarray(scores, dtype=float)
    if regression:
        labels = np.asarray(labels, dtype=float)
        preds = scores[:, 0]
        scalars = regression_metrics(labels, preds)
    else:
        labels = np.asarray(labels, dtype=np.int64)
        preds = scores.argmax(axis=1)
        scalars = classification_metrics(labels, preds, scores.shape[1])
    intervals = bootstrap_ci(labels, preds, regression=regression, num_labels=scores.shape[1], resamples=resamples,
                             seed=seed)
    for name, interval in intervals.items():
        scalars[f"{name}_ci"] = interval
    scalars = with_too_few_as_none(scalars)
    details: dict = {"bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95}}
    if regression:
        details["mae_by_length"] = by_length(texts, labels, preds, regression=True)
        error = np.abs(labels - preds)
        order = np.argsort(-error, kind="stable")[:WORST_REGRESSION]
        wrong = [(int(i), float(preds[i]), float(error[i])) for i in order]
    else:
        calib = calibration(labels, scores)
        scalars["ece"] = calib["ece"]
        details.update(confusion_matrix=confusion_matrix(labels, preds, scores.shape[1]), calibration=calib,
                       accuracy_by_length=by_length(texts, labels, preds))
        missed = np.flatnonzero(preds != labels)
        order = missed[np.argsort(-scores[missed].max(axis=1), kind="stable")]
        wrong = [(int(i), int(preds[i]), float(scores[i].max())) for i in order]
    misclassified = [{"idx": i, **text_fields(texts[i]), "label": labels[i].item(), "prediction": pred,
                      "score": score} for i, pred, score in wrong]
    if metrics:
        keep = {*metrics, *(f"{m}_ci" for m in metrics), "ece", "mae", "n"}
        scalars = {k: v for k, v in scalars.items() if k in keep}
    return {"scalars": scalars, "details": details, "misclassified": misclassified}


def with_too_few_as_none(scalars: dict) -> dict:
    """`scalars` (metrics, their `_ci` intervals, n) with None where n is too small for a value to mean anything:
    a correlation under MIN_CORRELATION_POINTS, an interval under MIN_INTERVAL_POINTS. Only what is reported:
    checkpoint selection and the baselines' C search still get numbers from task_metrics."""
    n = scalars["n"]
    out = dict(scalars)
    for key in scalars:
        metric = key.removesuffix("_ci")
        if (metric in REGRESSION and n < MIN_CORRELATION_POINTS) or (key.endswith("_ci") and n < MIN_INTERVAL_POINTS):
            out[key] = None
    return out


def text_fields(text) -> dict:
    """{"sentence": ...} or, for a pair, {"sentence": ..., "sentence2": ...}."""
    return {"sentence": text} if isinstance(text, str) else {"sentence": text[0], "sentence2": text[1]}
