"""The run folder every producer (train, baselines, evaluate) writes and every consumer (compare) reads.

    model/                   the model (weights + config + tokenizer, or a baseline's pipeline)
    metrics.json             flat scalars: eval_accuracy, eval_f1, eval_mcc, eval_*_ci, eval_ece, timing, ...
                             and test_* when a labelled test set was given
    run.json                 resolved config, versions, git commit, hardware, command line, date
    predictions_<set>.tsv    idx, sentence, label, prediction, score (set: dev, test)
    analysis_<set>.json      confusion matrix, calibration bins (reliability diagram), accuracy by length
    misclassified_<set>.tsv  the wrong predictions, most confident first
"""

from __future__ import annotations

import json
from pathlib import Path

from ..device import peak_mb
from ..errors import UserError
from ..outputs import OutputFolder
from .metrics import evaluation_report

SET_PREFIX = {"dev": "eval", "test": "test"}  # metrics.json key prefix per evaluation set


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found (is {path.parent} a run folder?)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg})") from None


def _clean(text: str) -> str:
    """GLUE-style tsv has no quoting, so tabs and newlines inside a sentence become spaces."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def write_set_results(out: OutputFolder, name: str, sentences, labels, probs) -> dict:
    """Predictions, analysis and misclassified examples of one evaluation set; returns prefixed scalars."""
    report = evaluation_report(list(sentences), labels, probs)
    lines = ["idx\tsentence\tlabel\tprediction\tscore"]
    for i, (sentence, label, p) in enumerate(zip(sentences, labels, probs)):
        lines.append(f"{i}\t{_clean(sentence)}\t{int(label)}\t{int(p.argmax())}\t{float(p.max()):.6f}")
    out.write_text(f"predictions_{name}.tsv", "\n".join(lines) + "\n")
    out.write_json(f"analysis_{name}.json", report["details"])
    wrong = ["idx\tsentence\tlabel\tprediction\tscore"] + [
        f"{m['idx']}\t{_clean(m['sentence'])}\t{m['label']}\t{m['prediction']}\t{m['score']:.6f}"
        for m in report["misclassified"]
    ]
    out.write_text(f"misclassified_{name}.tsv", "\n".join(wrong) + "\n")
    prefix = SET_PREFIX[name]
    scalars = report["scalars"]
    return {**{f"{prefix}_{k}": v for k, v in scalars.items() if k != "n"}, f"{prefix}_samples": scalars["n"]}


def read_predictions(path: Path) -> list[tuple[int, str, int, int, float]]:
    """Rows (idx, sentence, label, prediction, score) of a predictions_<set>.tsv."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: not found") from None
    if not lines or lines[0].split("\t") != ["idx", "sentence", "label", "prediction", "score"]:
        raise UserError(f"{path}: not a predictions file (expected header idx, sentence, label, prediction, score)")
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        try:
            rows.append((int(parts[0]), parts[1], int(parts[2]), int(parts[3]), float(parts[4])))
        except (IndexError, ValueError):
            raise UserError(f"{path}, line {lineno}: malformed prediction row") from None
    return rows


def evaluate_into(out: OutputFolder, probabilities, sets: dict) -> dict:
    """Score each labelled set with `probabilities(texts) -> array`, write its files, return scalars
    (with the dev inference throughput and the run's peak memory)."""
    import time

    scalars: dict = {}
    for name, dataset in sets.items():
        sentences = list(dataset["sentence"])
        started = time.perf_counter()
        probs = probabilities(sentences)
        seconds = time.perf_counter() - started
        scalars.update(write_set_results(out, name, sentences, dataset["label"], probs))
        if name == "dev":
            scalars["infer_sentences_per_second"] = round(len(sentences) / max(seconds, 1e-9), 1)
    scalars["eval_split"] = "validation"
    scalars["peak_memory_mb"] = peak_mb()
    return scalars
