"""`evaluate`: a saved model's metrics on a labelled split or file."""

from __future__ import annotations

from ..config import DataConfig
from ..data import load_split, read_examples
from ..errors import UserError
from ..evaluation.metrics import evaluation_report
from ..tasks import get_task
from .backends import load_model


def evaluate(model_dir: str, *, data: DataConfig, split: str = "validation", file: str | None = None) -> dict:
    """Metrics of a saved model on a labelled split or file: {"accuracy", "f1", "mcc", "n"} with
    95% bootstrap intervals (`*_ci`) and the expected calibration error (`ece`)."""
    task = get_task(data.task)
    if file:
        columns = read_examples(file, task, require_label=True)
        sentences, labels = columns["sentence"], columns["label"]
    else:
        dataset = load_split(data, task, split)
        if "label" not in dataset.column_names:
            raise UserError(f"split '{split}' has no labels to evaluate against (use --file with a labelled file)")
        sentences, labels = dataset["sentence"], dataset["label"]
    probs = load_model(model_dir).probabilities(list(sentences))
    return evaluation_report(list(sentences), labels, probs)["scalars"]
