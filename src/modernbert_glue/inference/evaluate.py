"""`evaluate`: a saved model's metrics on a labelled split or file of the task it was trained on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import DataConfig
from ..data import check_folder_task, first_rows, load_columns, read_examples, texts_of
from ..errors import UserError
from ..evaluation.metrics import evaluation_report
from ..run_paths import data_dir_from_env
from ..tasks import task_of_model
from .backends import load_model
from .classifier import check_finite
from .predict import check_column_count, file_task


def evaluate(model_dir: str, *, data: DataConfig, split: str | None = None, file: str | None = None,
             task: str | None = None, backend: str = "torch", text_columns: list[str] | None = None,
             label_column: str | None = None) -> dict:
    """Metrics of a saved model on a labelled split (default validation) or file: the task's metrics (those its
    run's metrics.json has: accuracy and f1 for MRPC, accuracy alone for RTE, pearson and spearman for STS-B) and n, with 95% bootstrap intervals (`*_ci`) and, for classifiers, the
    expected calibration error (`ece`). `task`, when given, must be the model's; `backend` onnx reads an export
    folder. `text_columns` and `label_column` name a --file's columns where they differ from the task's."""
    if (text_columns or label_column) and not file:
        raise UserError("--text-columns and --label-column name the columns of --file's file; give --file")
    if file and (data.data_dir is not None or split is not None):  # the file would silently win
        given = " and ".join(o for o, v in (("--data-dir", data.data_dir), ("--split", split)) if v is not None)
        raise UserError(f"--file {file}: evaluates that file, not a split; drop {given}")
    split = split or "validation"
    model = load_model(model_dir, backend)
    model_task = task_of_model(model.settings, model.label_names)
    if task and task != model_task.name:
        raise UserError(f"--task {task}: {model_dir} was trained on {model_task.name}")
    if file:
        if text_columns:
            check_column_count(text_columns, model_task.text_columns, model_dir)
        columns = read_examples(file, file_task(file, model_task, text_columns, label_column), require_label=True)
    else:
        if data_dir := data.data_dir or data_dir_from_env():  # the task is the model's: --task cannot change it
            check_folder_task(Path(data_dir), model_task,
                              f"{model_dir} was trained on {model_task.name}: evaluate a model of task {{named}} on it")
        columns = load_columns(dataclasses.replace(data, task=model_task.name), model_task, split)
        if "label" not in columns:
            raise UserError(f"split '{split}' has no labels to evaluate against (use --file with a labelled file)")
    columns = first_rows(columns, data.max_eval_samples, file or split)  # --file and every split alike
    texts = texts_of(columns)
    scores = check_finite(model.scores(texts), model_dir)  # NaN would make metrics (and JSON) of nothing
    return evaluation_report(texts, columns["label"], scores, regression=model_task.regression,
                             metrics=model_task.metrics)["scalars"]
