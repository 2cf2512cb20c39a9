"""Tasks: each GLUE task (and a user's own data) defined in one place — its text columns (one or a pair), its
labels or regression, its metrics (the first selects the best checkpoint), the files of the GLUE distribution
and their layouts, and the Hub config.

Inside the package a split is a dict of columns: "sentence" (the first text), "sentence2" (the second text of
a pair task), "label" (an int id, or a float for regression). Readers map each file's own column names to
these (data.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import UserError

HUB_PATH = "nyu-mll/glue"
TEXT_KEYS = ("sentence", "sentence2")  # the internal names of the first and second text
ID_KEY = "idx"  # the internal name of a row's id (a test file's index/id column; the Hub's name for it)
CUSTOM = "custom"  # a user's own data: columns from --text-columns/--label-column, labels from the train file


@dataclass(frozen=True)
class Task:
    name: str
    text_columns: tuple[str, ...]  # as the GLUE files name them
    label_column: str | None  # None: the task's test-only files (AX)
    label_names: tuple[str, ...] = ()  # () for regression, or for a custom task before its labels are read
    regression: bool = False
    metrics: tuple[str, ...] = ("accuracy", "f1", "mcc")  # the first is the main one (best checkpoint, tables)
    files: dict[str, str] = field(default_factory=dict)  # split -> file name in a GLUE-format folder
    headerless: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file name -> its column names
    hub_config: str = ""
    hub_text_columns: tuple[str, ...] = ()  # () when the Hub names them as the files do
    hub_splits: dict[str, str] = field(default_factory=dict)  # our split -> the Hub's, where they differ
    extra_eval: dict[str, str] = field(default_factory=dict)  # more labelled dev sets: set name -> split
    submission: str = ""  # the GLUE leaderboard's file name (without .tsv)
    # GLUE's QQP train.tsv has rows with a wrong field count (nyu-mll/GLUE-baselines#5); HF's and BERT's
    # processors skip them, so this reader does too, and says how many (never in a test split: see load_columns).
    skip_malformed_rows: bool = False
    predicted_by: str = ""  # a test-only task predicted with another task's model (AX: MNLI's)
    score_range: tuple[float, float] | None = None  # a regression task's scale (STS-B: 0-5); None: any number
    # The test file's id column: the server matches each prediction to its row by it (QQP's file says `id`)
    test_id_column: str = "index"

    @property
    def num_labels(self) -> int:
        return 1 if self.regression else len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return {0: "score"} if self.regression else dict(enumerate(self.label_names))

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def title(self) -> str:
        """The name GLUE's papers and leaderboard print: CoLA, SST-2, STS-B, MNLI, ..."""
        return self.submission.removesuffix("-m") or self.name

    def with_columns(self, text_columns=None, label_column=None, regression: bool | None = None) -> Task:
        """This task reading other column names (a user's own files); `regression` turns a custom task into one."""
        changes: dict = {}
        if text_columns:
            if len(text_columns) not in (1, 2):
                raise UserError(f"--text-columns takes one column or a pair, got {len(text_columns)}")
            if len(text_columns) != len(self.text_columns) and self.name != CUSTOM:
                raise UserError(f"task {self.name} classifies {_texts(self)}; --text-columns names "
                                f"{len(text_columns)} column(s)")
            changes["text_columns"] = tuple(text_columns)
            changes["hub_text_columns"] = ()
        if label_column:
            changes["label_column"] = label_column
        if regression and not self.regression:
            if self.name != CUSTOM:
                raise UserError(f"--regression goes with --task custom; {self.name} has fixed labels")
            changes.update(regression=True, metrics=REGRESSION_METRICS, label_names=())
        texts, label = changes.get("text_columns", self.text_columns), changes.get("label_column", self.label_column)
        if label in texts or len(set(texts)) < len(texts):  # the model would read its answer, or one text twice
            raise UserError(f"--text-columns {','.join(texts)} with the label column '{label}': each column is "
                            "one text or the label")
        return dataclasses.replace(self, **changes) if changes else self

    def with_labels(self, names) -> Task:
        """A custom classification task with the label names found in its training file."""
        names = tuple(str(n) for n in names)
        metrics = BINARY_METRICS if len(names) == 2 else MULTICLASS_METRICS
        return dataclasses.replace(self, label_names=names, metrics=metrics)


def _texts(task: Task) -> str:
    return texts_kind(len(task.text_columns))


def texts_kind(columns: int) -> str:
    """What a model reading this many text columns classifies, as messages name it."""
    return "sentence pairs" if columns == 2 else "single sentences"


BINARY_METRICS = ("accuracy", "f1", "f1_macro", "mcc")
MULTICLASS_METRICS = ("accuracy", "f1_macro", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
GLUE_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
NLI = ("entailment", "not_entailment")

TASKS = {task.name: task for task in (
    Task("cola", ("sentence",), "label", ("unacceptable", "acceptable"), metrics=("mcc", "accuracy"),
         files=GLUE_FILES, headerless={f: ("source", "label", "marker", "sentence") for f in ("train.tsv", "dev.tsv")},
         hub_config="cola", submission="CoLA"),
    Task("sst2", ("sentence",), "label", ("negative", "positive"), metrics=BINARY_METRICS, files=GLUE_FILES,
         hub_config="sst2", submission="SST-2"),
    Task("mrpc", ("#1 String", "#2 String"), "Quality", ("not_equivalent", "equivalent"),
         metrics=("f1", "accuracy"), files=GLUE_FILES, hub_config="mrpc", hub_text_columns=("sentence1", "sentence2"),
         submission="MRPC"),
    Task("stsb", ("sentence1", "sentence2"), "score", regression=True, metrics=REGRESSION_METRICS, files=GLUE_FILES,
         hub_config="stsb", submission="STS-B", score_range=(0.0, 5.0)),
    Task("qqp", ("question1", "question2"), "is_duplicate", ("not_duplicate", "duplicate"),
         metrics=("f1", "accuracy"), files=GLUE_FILES, hub_config="qqp", submission="QQP", skip_malformed_rows=True,
         test_id_column="id"),
    Task("mnli", ("sentence1", "sentence2"), "gold_label", ("entailment", "neutral", "contradiction"),
         metrics=("accuracy",),
         files={"train": "train.tsv", "validation": "dev_matched.tsv", "test": "test_matched.tsv",
                "validation_mismatched": "dev_mismatched.tsv", "test_mismatched": "test_mismatched.tsv"},
         hub_config="mnli", hub_text_columns=("premise", "hypothesis"),
         hub_splits={"validation": "validation_matched", "test": "test_matched"},
         extra_eval={"dev_mismatched": "validation_mismatched"}, submission="MNLI-m"),
    Task("qnli", ("question", "sentence"), "label", NLI, metrics=("accuracy",), files=GLUE_FILES,
         hub_config="qnli", submission="QNLI"),
    Task("rte", ("sentence1", "sentence2"), "label", NLI, metrics=("accuracy",), files=GLUE_FILES,
         hub_config="rte", submission="RTE"),
    Task("wnli", ("sentence1", "sentence2"), "label", ("not_entailment", "entailment"), metrics=("accuracy",),
         files=GLUE_FILES, hub_config="wnli", submission="WNLI"),
    # AX: MNLI's diagnostic set, test only, predicted with an MNLI model.
    Task("ax", ("sentence1", "sentence2"), None, ("entailment", "neutral", "contradiction"), metrics=("mcc",),
         files={"test": "diagnostic.tsv"}, hub_config="ax", hub_text_columns=("premise", "hypothesis"),
         submission="AX", predicted_by="mnli"),
    Task(CUSTOM, ("sentence",), "label", files=GLUE_FILES),
)}
GLUE_TASKS = tuple(name for name in TASKS if name not in ("ax", CUSTOM))
# Rows of each test file the GLUE server scores, by submission file (GLUE's distribution).
TEST_ROWS = {"CoLA": 1063, "SST-2": 1821, "MRPC": 1725, "STS-B": 1379, "QQP": 390965, "MNLI-m": 9796,
             "MNLI-mm": 9847, "QNLI": 5463, "RTE": 3000, "WNLI": 146, "AX": 1104}
NAMED_PREDICTIONS = ("mnli", "qnli", "rte", "ax")  # the server wants label names for these, ids for the others


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task '{name}' (available: {', '.join(TASKS)})") from None


def task_for(data) -> Task:
    """The task a DataConfig describes: its named task, reading the columns it names."""
    task = get_task(data.task)
    return task.with_columns(data.text_columns, data.label_column, data.regression)


def task_of_model(settings, label_names) -> Task:
    """The task a saved model was trained on, from its inference settings (inference_settings.InferenceSettings) and its
    config's label names: what `evaluate` reads files with."""
    task = TASKS.get(settings.task, TASKS[CUSTOM])
    task = task.with_columns(settings.text_columns, settings.label_column, settings.regression)
    if task.name == CUSTOM and not task.regression:
        task = task.with_labels(label_names)
    return task
