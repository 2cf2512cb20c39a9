"""The run folder every producer (train, baselines, evaluate) writes and every consumer (compare) reads.

    model/                   the model (weights + config + tokenizer, or a baseline's pipeline)
    metrics.json             flat scalars: the task's metrics as eval_<metric> and eval_<metric>_ci, eval_ece,
                             main_metric (the task's), timing, ...
                             and test_* when a labelled test set was given
    run.json                 resolved config, versions, git commit, hardware, command line, date
    predictions_<set>.tsv    idx, sentence (pairs: sentence1, sentence2), label, prediction, score (set: dev,
                             dev_mismatched, test); `predict --input` and `evaluate --file` read it back
    analysis_<set>.json      confusion matrix, calibration bins (reliability diagram), accuracy by length
    misclassified_<set>.tsv  the wrong predictions, most confident first (regression: the largest errors, with
                             abs_error in place of score)
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

from ..device import peak_mb
from ..errors import UserError, cut, first_line
from ..outputs import OutputFolder
from .metrics import evaluation_report

SET_PREFIX = {"dev": "eval", "dev_mismatched": "eval_mismatched", "test": "test"}  # metrics.json key prefixes


def read_json(path: Path) -> dict:
    """A JSON object from one of our folders' files; a missing, damaged or other file is one line naming it."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found (is {path.parent} a run folder?)") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not a file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # json's own limits (4300 digits; nesting deeper than the stack)
        raise UserError(f"{path}: not valid JSON ({first_line(exc)})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a JSON object")
    return obj


def is_number(value) -> bool:
    """A JSON number, NaN included: a sweep's or seeds set's reader ranks a NaN metric last rather than refusing it."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # JSON's true is an int to Python


def is_finite_number(value) -> bool:
    """A number a report can print and average: NaN or infinity would show as `nan` in a table and its mean."""
    return is_number(value) and math.isfinite(value)


def wrong_field(path: Path, key: str, value, expected: str) -> UserError:
    """One line: `key` in the file `path` is not `expected`, its value shown as the file spells it."""
    shown = json.dumps(value, ensure_ascii=False, default=str)  # true, "high", [1], null
    return UserError(f"{path}: '{key}' must be {expected}, got {cut(shown)}")


def read_seeds_summary(folder: Path) -> dict:
    """A --seeds folder's seeds.json, its fields checked where readers use them (a file edited by hand is one
    line naming the field): `seeds` a non-empty list of whole numbers, `per_seed` one object per seed (its
    `seed` one of them) with numbers (or null: a metric too few examples give no value) as values, `main_metric`
    text, and its mean and std numbers."""
    path = Path(folder) / "seeds.json"
    summary = read_json(path)

    def whole(value) -> bool:
        return is_number(value) and isinstance(value, int)

    seeds = summary.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(whole(s) for s in seeds):
        raise wrong_field(path, "seeds", seeds, "a non-empty list of whole numbers")
    per_seed = summary.get("per_seed")
    if not isinstance(per_seed, list) or not all(isinstance(row, dict) and whole(row.get("seed")) for row in per_seed) \
            or sorted(row["seed"] for row in per_seed) != sorted(seeds):
        raise UserError(f"{path}: 'per_seed' must hold one object per seed in 'seeds' ({seeds}), each with its 'seed'")
    for row in per_seed:
        for key, value in row.items():
            if not (is_number(value) or value is None and key != "seed"):
                raise wrong_field(path, f"per_seed' seed {row['seed']}: '{key}", value, "a number or null")
    main = summary.get("main_metric", "accuracy")
    if not isinstance(main, str):
        raise wrong_field(path, "main_metric", main, "a metric's name")
    if not is_number(summary.get(f"eval_{main}_mean")):
        raise wrong_field(path, f"eval_{main}_mean", summary.get(f"eval_{main}_mean"), "a number")
    if not (is_number(std := summary.get(f"eval_{main}_std")) or std is None and len(seeds) == 1):
        raise wrong_field(path, f"eval_{main}_std", std, "a number (null for one seed)")
    return summary


def read_sweep_choice(folder: Path) -> tuple[str, dict[int, float]]:
    """A finished sweep's chosen config, from its sweep.json: (its name, {seed: main dev metric}); its runs are
    FOLDER/<name>-seed-<seed>. One line when none was chosen (every config has a failed run) or the field is
    damaged."""
    path = Path(folder) / "sweep.json"
    chosen = read_json(path).get("chosen")
    if chosen is None:
        raise UserError(f"{path}: no config was chosen (every config has a failed run); pass the runs you mean "
                        "(its CONFIG-seed-N folders)")
    name, values = (chosen.get("name"), chosen.get("values")) if isinstance(chosen, dict) else (None, None)
    if not isinstance(name, str) or not isinstance(values, dict) or not values \
            or not all(k.isdigit() and is_finite_number(v) for k, v in values.items()):
        raise wrong_field(path, "chosen", chosen, "the chosen config: {name, values: {seed: dev value}}")
    return name, {int(k): float(v) for k, v in values.items()}


def _clean(text: str) -> str:
    """GLUE-style tsv has no quoting, so tabs and newlines inside a sentence become spaces."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


# A pair's columns are GLUE's (sentence1, sentence2), the names `predict --input` and `evaluate --file` look for:
# a run's predictions read back as their input. Files written before 2026-12-07 named them sentence, sentence2.
HEADER = ["idx", "sentence", "label", "prediction", "score"]
PAIR_HEADER = ["idx", "sentence1", "sentence2", "label", "prediction", "score"]
EARLIER_PAIR_HEADER = ["idx", "sentence", "sentence2", "label", "prediction", "score"]


def _row(i: int, text, label, prediction, score: float) -> str:
    texts = [text] if isinstance(text, str) else list(text)
    value = lambda v: f"{v:.6f}" if isinstance(v, float) else str(v)
    return "\t".join([str(i), *map(_clean, texts), value(label), value(prediction), f"{score:.6f}"])


def write_set_results(out: OutputFolder, name: str, texts, labels, scores, *, regression: bool = False,
                      metrics: tuple[str, ...] | None = None) -> dict:
    """Predictions, analysis and misclassified examples of one evaluation set; returns prefixed scalars (the
    task's `metrics` with intervals, ece or mae, n). `texts`: sentences or (sentence, sentence2) pairs;
    `scores`: probabilities, or [n, 1] values (regression)."""
    texts = list(texts)
    report = evaluation_report(texts, labels, scores, regression=regression, metrics=metrics)
    header = "\t".join(PAIR_HEADER if texts and not isinstance(texts[0], str) else HEADER)
    lines = [header]
    for i, (text, label, p) in enumerate(zip(texts, labels, scores)):
        if regression:
            lines.append(_row(i, text, float(label), float(p[0]), float(p[0])))
        else:
            lines.append(_row(i, text, int(label), int(p.argmax()), float(p.max())))
    out.write_text(f"predictions_{name}.tsv", "\n".join(lines) + "\n")
    out.write_json(f"analysis_{name}.json", report["details"])
    wrong_header = header.removesuffix("score") + "abs_error" if regression else header  # not the value itself
    wrong = [wrong_header] + [_row(m["idx"], (m["sentence"], m["sentence2"]) if "sentence2" in m else m["sentence"],
                             m["label"], m["prediction"], m["score"]) for m in report["misclassified"]]
    out.write_text(f"misclassified_{name}.tsv", "\n".join(wrong) + "\n")
    prefix = SET_PREFIX[name]
    scalars = report["scalars"]
    return {**{f"{prefix}_{k}": v for k, v in scalars.items() if k != "n"}, f"{prefix}_samples": scalars["n"]}


def predictions_layout(header: list[str] | None) -> tuple[tuple[str, ...], str] | None:
    """(text columns, gold label column) when `header` is a predictions file's, else None."""
    return (tuple(header[1:-3]), "label") if header in (HEADER, PAIR_HEADER, EARLIER_PAIR_HEADER) else None


def read_predictions(path: Path) -> list[tuple]:
    """Rows (idx, text, label, prediction, score) of a predictions_<set>.tsv; `text` is a (sentence, sentence2)
    pair for a pair task; label and prediction are ints, or floats for regression."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not a file") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not valid UTF-8") from None
    header = lines[0].split("\t") if lines else []
    if (layout := predictions_layout(header)) is None:
        raise UserError(f"{path}: not a predictions file (expected header {', '.join(HEADER)}, or for pairs "
                        f"{', '.join(PAIR_HEADER)})")
    pair = len(layout[0]) == 2
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        try:
            if len(parts) != len(header):
                raise ValueError
            number = float if "." in parts[-3] else int
            text = (parts[1], parts[2]) if pair else parts[1]
            rows.append((int(parts[0]), text, number(parts[-3]), number(parts[-2]), float(parts[-1])))
        except ValueError:
            raise UserError(f"{path}, line {lineno}: malformed prediction row") from None
    return rows


def evaluate_into(out: OutputFolder, scores, sets: dict, *, regression: bool = False,
                  metrics: tuple[str, ...] | None = None) -> dict:
    """Score each labelled set with `scores(texts) -> array` (probabilities, or values for regression), write its
    files, return scalars (with the dev inference throughput and the run's peak memory)."""
    import time

    from ..data import texts_of

    scalars: dict = {}
    for name, columns in sets.items():
        texts = texts_of(columns)
        started = time.perf_counter()
        values = scores(texts)
        seconds = time.perf_counter() - started
        scalars.update(write_set_results(out, name, texts, columns["label"], values, regression=regression,
                                         metrics=metrics))
        if name == "dev":
            scalars["infer_sentences_per_second"] = round(len(texts) / max(seconds, 1e-9), 1)
    scalars["eval_split"] = "validation"
    scalars["peak_memory_mb"] = peak_mb()
    return scalars
