"""The command line's shared options, declared once: each subcommand of cli.py uses these aliases."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from typing import Annotated, Optional

import typer

from .errors import UserError
from .outputs import model_folder

DataDir = Annotated[
    Optional[str], typer.Option("--data-dir", help="GLUE-format folder (train/dev/test.tsv); env MODERNBERT_GLUE_DATA_DIR.")
]
MaxEval = Annotated[Optional[int], typer.Option(
    "--max-eval-samples", help="Only the first N evaluation rows (train: of each dev set; --test-file is scored whole).")]
MaxTrain = Annotated[Optional[int], typer.Option("--max-train-samples", help="Only the first N training rows.")]
TrainFile = Annotated[Optional[str], typer.Option("--train-file", help="Training file (tsv/csv/jsonl/parquet).")]
ValidationFile = Annotated[Optional[str], typer.Option("--validation-file", help="Validation file.")]
TestFile = Annotated[Optional[str], typer.Option("--test-file", help="Labelled test file, evaluated after training.")]
OutputDir = Annotated[str, typer.Option("--output-dir", "-o", help="Folder to create (new, or empty).")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", metavar="", help="Replace a folder this tool wrote before (only its own files are removed).")]
Backend = Annotated[str, typer.Option("--backend", help="torch (a model folder) or onnx (an `export onnx` folder).")]
Bf16 = Annotated[Optional[str], typer.Option(
    "--bf16", help="bf16 autocast: auto, fast, on or off (true/false also accepted); auto is decided per device and "
    "use, fast is on where the hardware has bf16 units.")]
InputPath = Annotated[Optional[str], typer.Option(
    "--input-path", help="auto, padded, dynamic, grouped or packed batches (default: the preset's or model's).")]


def _model_folder(folder: str) -> str:
    return model_folder(folder) if folder else folder


ModelDir = Annotated[str, typer.Option(
    "--model", callback=_model_folder,
    help="A run folder written by `train` or `baseline`, or its model/ subfolder (--backend onnx: an `export onnx` "
    "folder).")]
FineTunedDir = Annotated[str, typer.Option(  # what exports: a transformer, not a baseline's scikit-learn pipeline
    "--model", callback=_model_folder,
    help="A run folder written by `train`, or its model/ subfolder.")]
Preset = Annotated[Optional[str], typer.Option(
    "--preset", help="Preset name, .toml path, or a train run's folder: the config it ran with (default: "
    "paper-TASK, the paper's recipe for the task).")]
HubModel = Annotated[Optional[str], typer.Option("--model", help="Hub id or local model folder.")]
TrainBatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Training batch size per device.")]
RandomInit = Annotated[Optional[bool], typer.Option(
    "--random-init", metavar="", help="Random weights from config.json.")]
InitFrom = Annotated[Optional[str], typer.Option(
    "--init-from", help="Start from a fine-tuned RUN/model (e.g. MNLI's) with a fresh classification layer; "
    "{seed} in it is each run's seed.")]
ModelOverrides = Annotated[Optional[list[str]], typer.Option(
    "--model-override", help="KEY=VALUE model config change; repeatable.")]
Sets = Annotated[Optional[list[str]], typer.Option(
    "--set", help="SECTION.KEY=VALUE for any config field; repeatable.")]
TokenBudget = Annotated[Optional[int], typer.Option(
    "--token-budget", help="packed only: pad every batch to this many tokens (one static shape).")]
Task = Annotated[Optional[str], typer.Option(
    "--task", help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, ax, or custom (your own columns).")]
TextColumns = Annotated[Optional[str], typer.Option(
    "--text-columns", help="The text column, or two for pairs: a or a,b (default: the task's own).")]
LabelColumn = Annotated[Optional[str], typer.Option("--label-column", help="The label column (default: the task's).")]
Regression = Annotated[Optional[bool], typer.Option(
    "--regression", metavar="", help="--task custom: the label is a number to predict.")]


DATA_OPTIONS = {"task": Task, "text_columns": TextColumns, "label_column": LabelColumn, "regression": Regression,
                "data_dir": DataDir, "train_file": TrainFile, "validation_file": ValidationFile,
                "test_file": TestFile, "max_train_samples": MaxTrain, "max_eval_samples": MaxEval}


def with_data_options(command):
    """Give a command the data options (declared once, above); it receives them as `data`, a dict of the
    DataConfig fields given (text columns as a list)."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "data"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=None)
             for name, kind in DATA_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(**options):
        data = {name: options.pop(name) for name in DATA_OPTIONS}
        data["text_columns"] = column_list(data["text_columns"])
        return command(data={name: value for name, value in data.items() if value is not None}, **options)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])
    return wrapper


def int_list(text: str, option: str) -> list[int]:
    return _number_list(text, option, int, "integers like 1,2,3")


def float_list(text: str, option: str) -> list[float]:
    return _number_list(text, option, float, "numbers like 1e-5,3e-5")


def _number_list(text: str, option: str, kind, example: str) -> list:
    try:  # an empty entry ("1,,2") is a typo as likely as not: refused, not skipped
        values = [kind(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values:  # "," or "" is no list at all: `--seeds ,` trained one unseeded run
        raise UserError(f"{option} '{text}': expected comma-separated {example}")
    return values


def column_list(text: str | None) -> list[str] | None:
    """--text-columns a,b -> ["a", "b"] (None when not given)."""
    if text is None:
        return None
    columns = [part.strip() for part in text.split(",")]
    if not all(columns) or len(columns) > 2:
        raise UserError(f"--text-columns '{text}': expected one column name or two separated by a comma")
    return columns


def data_args(data: dict) -> list[str]:
    """The data options given (`with_data_options`'s dict) as command-line arguments again, for a child `train`."""
    args: list[str] = []
    for name, value in data.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args += [flag] if value else []
        elif isinstance(value, list):
            args += [flag, ",".join(value)]
        else:
            args += [flag, str(value)]
    return args


def emit(obj) -> None:
    """One JSON line on stdout (stdout carries only results)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
