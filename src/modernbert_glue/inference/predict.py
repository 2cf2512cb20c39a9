"""`predict`: texts or sentence pairs from arguments, a file or stdin, classified by any backend, one JSON record
each."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from ..data import FORMATS, STDIN, is_valid_unicode, read_examples, read_lines, texts_of
from ..errors import UserError, shown
from ..tasks import TASKS, Task, get_task, task_of_model, texts_kind
from .backends import check_torch_only, load_model, predict_records

log = logging.getLogger(__name__)


def predict(folder: str, texts: list[str] | None = None, input: str | None = None, backend: str = "torch", *,
            task: str | None = None, text_columns: list[str] | None = None, **options) -> list[dict]:
    """Load a model, read its inputs (arguments, a file or stdin: `read_texts`, by the model's text columns or
    `text_columns`) and classify them. `task`, when given, must be the model's (or one it predicts: AX, MNLI's)."""
    if texts and input:
        raise UserError("give sentences as arguments or --input, not both")
    torch_only = {k: options.pop(k) for k in ("input_path", "bf16") if k in options}
    check_torch_only(backend, **torch_only)
    model = load_model(folder, backend, **options, **(torch_only if backend == "torch" else {}))
    if task and model.settings.task not in (task, get_task(task).predicted_by):
        raise UserError(f"--task {task}: {folder} was trained on {model.settings.task}")
    if text_columns:
        check_column_count(text_columns, model.settings.text_columns, folder)
    model_task = task_of_model(model.settings, model.label_names)
    return predict_texts(model, read_texts(input, texts, model_task, text_columns), folder)


def check_column_count(text_columns: list[str], columns: tuple[str, ...], folder: str) -> None:
    """--text-columns must name as many columns as the model reads (one, or a pair)."""
    if len(text_columns) != len(columns):
        raise UserError(f"--text-columns names {len(text_columns)} column(s); {folder} takes {len(columns)}")


def predict_texts(model, texts: list, name: str = "the model") -> list[dict]:
    """Classify `texts` (or pairs) with a loaded model; logs the rate, loading excluded (to stderr)."""
    pair = len(model.settings.text_columns) == 2
    for i, text in enumerate(texts, start=1):  # the Python API's texts are any objects (api.predict)
        if not (_is_pair(text) if pair else isinstance(text, str)):
            raise UserError(f"input {i}: {name} classifies {texts_kind(2 if pair else 1)}"
                            + (": give each as (first, second)" if pair else "") + f", got {shown(text)}")
        parts = text if pair else [text]  # refused as `predict`'s lines and the server's texts are
        if any(not part.strip() for part in parts):
            raise UserError(f"input {i}: {'a' if pair else 'the'} text is empty or only whitespace")
        if not all(map(is_valid_unicode, parts)):
            raise UserError(f"input {i}: not valid Unicode (a lone surrogate)")
    started = time.perf_counter()
    records = predict_records(model, texts, name)
    seconds = time.perf_counter() - started
    log.info("classified %d texts in %.3f s (%.1f texts/s, model loading excluded)", len(texts), seconds,
             len(texts) / max(seconds, 1e-9))
    return records


def _is_pair(text) -> bool:
    return isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(part, str) for part in text)


def read_texts(path: str | None, texts: list[str] | None, task: Task, text_columns: list[str] | None = None) -> list:
    """Texts for a model of `task` from arguments, a file (plain text per line, or tsv/csv/jsonl/parquet read as
    `file_task` says), or stdin. A pair model's are pairs: arguments taken two by two, plain-text lines split at a
    tab."""
    pair = task.is_pair
    if texts:
        for i, text in enumerate(texts, start=1):
            if not text.strip():
                raise UserError(f"text argument {i} is empty")
            if not is_valid_unicode(text):
                raise UserError(f"text argument {i} is not valid UTF-8")
        if pair:
            if len(texts) % 2:
                raise UserError(f"a pair model takes its texts two by two (first, second, ...); got {len(texts)}")
            return list(zip(texts[::2], texts[1::2]))
        return list(texts)
    if path is not None and path != "-" and Path(path).suffix.lower() in FORMATS:
        reader = dataclasses.replace(file_task(path, task, text_columns), label_column=None)  # texts alone
        return texts_of(read_examples(path, reader, require_label=False))
    lines = read_lines(path)
    return _pairs(lines, STDIN if path in (None, "-") else path) if pair else lines


def _pairs(lines: list[str], where: str) -> list[tuple[str, str]]:
    out = []
    for i, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise UserError(f"{where}, line {i}: a pair model takes two texts per line, separated by a tab "
                            f"(found {len(parts) - 1} tabs)")
        if empty := [n for n, part in zip(("first", "second"), parts) if not part.strip()]:
            raise UserError(f"{where}, line {i}: the {' and '.join(empty)} text is empty or only whitespace")
        out.append((parts[0], parts[1]))
    return out


def file_task(path: str, task: Task, text_columns: list[str] | None = None, label_column: str | None = None) -> Task:
    """How a model of `task` reads a tsv/csv/jsonl/parquet file (predict --input, evaluate --file): one of the
    task's headerless GLUE files by its layout; a run's predictions file by its own (its texts; its labels are class
    ids, and its `label` column is the gold one: a regression's `score` there is the prediction); else by the
    columns given, or as `train` reads it (readers.with_file_columns: the model's own names, the Hub's or GLUE's
    generic ones, whichever its header has)."""
    from ..data import header_columns, with_file_columns
    from ..readers import text_column_names
    from ..evaluation.runfolder import predictions_layout

    if Path(path).suffix.lower() not in FORMATS:
        return task  # (read_examples says what is wrong with another kind of file)
    header = header_columns(path)
    own = header is not None and set(task.text_columns) <= set(header)
    if Path(path).name in task.headerless and not text_columns and not own:  # GLUE's layout, whatever the model read
        return TASKS[task.name].with_columns(None, label_column)
    layout = predictions_layout(header)
    if layout and len(layout[0]) == len(task.text_columns):
        if not task.regression:
            task = dataclasses.replace(task, label_names=tuple(map(str, range(task.num_labels))))
        return task.with_columns(text_columns or layout[0], label_column or layout[1])
    if layout and not text_columns:  # its first sentences alone would be classified
        raise UserError(f"{path}: predictions of a model of {texts_kind(len(layout[0]))}; this one classifies "
                        f"{texts_kind(len(task.text_columns))}")
    given = task.with_columns(text_columns, label_column)
    found = with_file_columns(path, given, texts_given=bool(text_columns), label_given=bool(label_column))
    if header is not None and not text_columns and not set(found.text_columns) <= set(header):  # say which it takes
        wanted = " or ".join(", ".join(names) for names in text_column_names(task))
        raise UserError(f"{path}: no column(s) {wanted} (name yours with --text-columns); found: {', '.join(header)}")
    return found
