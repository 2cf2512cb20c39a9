"""Classification metrics with their uncertainty: accuracy, macro-F1, MCC, bootstrap intervals,
paired tests between systems (McNemar, paired bootstrap), calibration and length buckets.

Metrics are computed from confusion counts so that thousands of bootstrap resamples are one vectorised
pass; tests check every value against scikit-learn.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("accuracy", "f1", "mcc")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits (rows), computed stably."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _counts(labels: np.ndarray, preds: np.ndarray, axis: int = -1):
    """(tp, fp, fn, tn) for the positive class 1, along `axis`."""
    tp = np.sum((preds == 1) & (labels == 1), axis=axis)
    fp = np.sum((preds == 1) & (labels == 0), axis=axis)
    fn = np.sum((preds == 0) & (labels == 1), axis=axis)
    tn = np.sum((preds == 0) & (labels == 0), axis=axis)
    return tp, fp, fn, tn


def _safe_div(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _from_counts(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    n = tp + fp + fn + tn
    f1_pos = _safe_div(2 * tp, 2 * tp + fp + fn)
    f1_neg = _safe_div(2 * tn, 2 * tn + fn + fp)
    mcc_den = np.sqrt((tp + fp).astype(float) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "accuracy": _safe_div(tp + tn, n),
        "f1": (f1_pos + f1_neg) / 2,
        "mcc": _safe_div(tp * tn - fp * fn, mcc_den),
    }


def classification_metrics(labels, predictions) -> dict[str, float]:
    """accuracy, macro-averaged F1 and Matthews correlation for binary labels, plus n."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    values = _from_counts(*_counts(labels, predictions))
    return {**{k: float(v) for k, v in values.items()}, "n": int(labels.size)}


def bootstrap_ci(labels, predictions, *, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile bootstrap interval for each metric: {"accuracy": [low, high], ...}."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, labels.size, size=(resamples, labels.size))
    values = _from_counts(*_counts(labels[idx], predictions[idx], axis=1))
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
    k = min(only_a, only_b)
    p_exact = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    chi2 = (abs(only_a - only_b) - 1) ** 2 / n
    p_chi2 = math.erfc(math.sqrt(chi2 / 2))  # survival of chi-square with 1 degree of freedom
    return {"only_a": only_a, "only_b": only_b, "p_exact": p_exact, "chi2": chi2, "p_chi2": p_chi2}


def paired_bootstrap(correct_a, correct_b, *, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Accuracy difference a - b over the same examples, its bootstrap interval, and the share of
    resamples where the sign flips (a two-sided bootstrap p-value)."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(resamples, diff.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    observed = float(diff.mean())
    flipped = np.mean(means <= 0) if observed > 0 else np.mean(means >= 0)
    return {
        "difference": observed,
        "ci": [float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))],
        "p": float(min(1.0, 2 * flipped)),
    }


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


def accuracy_by_length(sentences, labels, predictions, buckets=LENGTH_BUCKETS) -> list[dict]:
    """Accuracy per sentence-length bucket (length in whitespace-separated words)."""
    lengths = np.array([len(s.split()) for s in sentences])
    correct = np.asarray(labels) == np.asarray(predictions)
    out = []
    for low, high in buckets:
        mask = (lengths >= low) & (lengths <= high)
        name = f"{low}-{high}" if high < 10_000 else f"{low}+"
        out.append({"words": name, "count": int(mask.sum()),
                    "accuracy": float(correct[mask].mean()) if mask.any() else None})
    return out


def evaluation_report(sentences, labels, probs, *, resamples: int = 1000, seed: int = 0) -> dict:
    """Everything we report about one system on one labelled set.

    Returns {"scalars": {accuracy, f1, mcc, n, accuracy_ci, f1_ci, mcc_ci, ece},
             "details": {confusion_matrix, calibration, accuracy_by_length},
             "misclassified": [{"idx", "sentence", "label", "prediction", "score"}]}.
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=float)
    preds = probs.argmax(axis=1)
    scalars = classification_metrics(labels, preds)
    for name, interval in bootstrap_ci(labels, preds, resamples=resamples, seed=seed).items():
        scalars[f"{name}_ci"] = interval
    calib = calibration(labels, probs)
    scalars["ece"] = calib["ece"]
    details = {
        "confusion_matrix": confusion_matrix(labels, preds, probs.shape[1]),
        "calibration": calib,
        "accuracy_by_length": accuracy_by_length(sentences, labels, preds),
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
    }
    wrong = np.flatnonzero(preds != labels)
    misclassified = [
        {"idx": int(i), "sentence": sentences[i], "label": int(labels[i]), "prediction": int(preds[i]),
         "score": float(probs[i].max())}
        for i in wrong[np.argsort(-probs[wrong].max(axis=1), kind="stable")]
    ]
    return {"scalars": scalars, "details": details, "misclassified": misclassified}
