"""Classification metrics: accuracy, macro-F1, Matthews correlation."""

from __future__ import annotations

import numpy as np


def classification_metrics(labels, predictions) -> dict[str, float]:
    """accuracy, macro-averaged F1 and MCC (what GLUE reports for SST-2 and CoLA), plus n."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
        "n": int(labels.size),
    }
