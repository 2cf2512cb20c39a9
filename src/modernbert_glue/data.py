"""A task's splits (from a GLUE-format folder, single files or the Hub) as checked columns; tokenization.

Files are read by readers.py; everything that goes wrong becomes one UserError line naming the file (and line).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

from .config import DATA_DIR_ENV, DataConfig
from .run_paths import data_dir_from_env
from .errors import UserError
from .labels import require_two_classes, with_found_labels  # noqa: F401  (the data interface other modules use)
from .readers import (  # noqa: F401
    FORMATS,
    MAX_TEXT_CHARS,
    STDIN,
    header_columns,
    is_valid_unicode,
    read_examples,
    read_lines,
    with_file_columns,
)
from .tasks import CUSTOM, HUB_PATH, ID_KEY, TASKS, TEXT_KEYS, Task, task_for

log = logging.getLogger(__name__)

# What to do when the Hub cannot give a split: the data options of train, evaluate, baseline (glue-submission
# names its own, --data-root)
DATA_DIR_HINT = f"pass --data-dir FOLDER (GLUE tsv files) or set ${DATA_DIR_ENV}"
SPLITS = ("train", "validation", "test")
FILE_OPTIONS = "train's --train-file/--validation-file, evaluate's --file"  # the commands that take single files


def split_source(cfg: DataConfig, task: Task, split: str) -> str:
    """Where a split comes from: a file path, or 'hub' (nyu-mll/glue)."""
    explicit = {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}.get(split)
    if explicit:
        return explicit
    data_dir = cfg.data_dir or data_dir_from_env()  # evaluate's; a run's config holds it already
    if data_dir:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise UserError(f"{folder}: data folder not found")
        if split not in task.files:
            raise UserError(f"task {task.name} has no {split} split")
        check_folder_task(folder, task)
        check_label_spelling(folder / task.files[split], task)
        return str(folder / task.files[split])
    if task.name == CUSTOM:
        raise UserError(f"task custom reads your files: pass them ({FILE_OPTIONS}) or --data-dir "
                        f"(no {split} file given)")
    return "hub"


def check_folder_task(folder: Path, task: Task,
                      remedy: str = f"pass --task {{named}}, or name its files one by one ({FILE_OPTIONS})") -> None:
    """A data folder named after another GLUE task (GLUE's own names: WNLI, SST-2, STS-B, ...) is refused: its
    files have the same columns, so `--task rte --data-dir glue/WNLI` would read WNLI's labels as RTE's ids (the
    two orders are reversed), and train or score on flipped labels without a word. `remedy` ends the message
    ({named}: the folder's task)."""
    named = re.sub(r"[^a-z0-9]", "", Path(os.path.abspath(folder)).name.lower())
    if task.name != CUSTOM and named in TASKS and named not in (task.name, CUSTOM):
        raise UserError(f"--data-dir {folder}: a folder of task {named}'s files, read as task {task.name}; "
                        + remedy.format(named=named))


NAMED_LABELS = ("rte", "qnli", "mnli")  # GLUE's files of these tasks name their labels; WNLI's (RTE's columns): ids


def check_label_spelling(path: Path, task: Task) -> None:
    """The folder's name is not all: WNLI's files copied to a folder named otherwise, read as RTE, would have
    their 0/1 ids read as RTE's, whose order is the reverse. GLUE's RTE, QNLI and MNLI files name their labels,
    so ids in a task folder's file are refused (a file given with --train-file may use ids)."""
    from .labels import is_integer_text

    if task.name not in NAMED_LABELS or not path.is_file():
        return
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        header, first = (f.readline().rstrip("\r\n").split("\t") for _ in range(2))
    if task.label_column in header and len(first) == len(header):
        value = first[header.index(task.label_column)].strip()
        if is_integer_text(value):
            raise UserError(f"{path}: line 2: label {value!r} is an id, but GLUE's {task.title} files name their "
                            f"labels ({', '.join(task.label_names)}): another task's files? pass its --task, or "
                            f"name the files one by one to read ids ({FILE_OPTIONS})")


def load_split(cfg: DataConfig, task: Task, split: str):
    """One split as a datasets.Dataset (what the HF Trainer takes): `load_columns` wrapped."""
    from datasets import Dataset

    return Dataset.from_dict(load_columns(cfg, task, split))


def split_named(task: Task, split: str) -> str:
    """A split by its name (train, validation, test, a task's own such as MNLI's validation_mismatched) or by its
    GLUE file's, as papers and our reports name it: dev, dev_mismatched."""
    split = {"dev": "validation", **{Path(name).stem: key for key, name in task.files.items()}}.get(split, split)
    if split not in (*SPLITS, *task.files):
        raise UserError(f"unknown split '{split}' (use {', '.join(dict.fromkeys((*SPLITS, *task.files)))})")
    return split


def load_columns(cfg: DataConfig, task: Task, split: str, *, hub_hint: str = DATA_DIR_HINT,
                 ids: bool = False) -> dict[str, list]:
    """One split as {"sentence": [...], ["sentence2": [...],] "label": [...]} ("label" where known), checked row
    by row. Needs no `datasets` for files (the training engine runs where that package is not installed); the
    Hub does. Splits: train, validation, test, and a task's extra ones (MNLI's validation_mismatched).
    `hub_hint`: how the command's user gives local files instead, for the line that says the Hub failed.
    `ids`: each row's id too, under ID_KEY (the file's `task.test_id_column`, the Hub's idx), kept with its row.

    A test split keeps every row (a malformed one is refused): its predictions are matched to its rows, and
    QQP's skipping of malformed training rows would leave a test row unpredicted."""
    split = split_named(task, split)
    test = split.startswith("test")
    source = split_source(cfg, task, split)
    if source == "hub" and split in ("train", "validation") and (cfg.train_file or cfg.validation_file):
        option = f"--{'train' if split == 'train' else 'validation'}-file"  # one file given, the other one not
        log.warning("no %s given: task %s's %s split comes from the Hub", option, task.name, split)
        hub_hint = f"pass {option} too, or --data-dir FOLDER"
    if source == "hub":
        columns = _load_from_hub(task, split, hub_hint, ids=ids)
    else:
        reading = with_file_columns(source, task, texts_given=bool(cfg.text_columns),
                                    label_given=bool(cfg.label_column))
        strict = dataclasses.replace(reading, skip_malformed_rows=False) if test else reading
        columns = read_examples(source, strict, require_label=not test, id_column=task.test_id_column if ids else None)
    limit = {"train": cfg.max_train_samples}.get(split, None if test else cfg.max_eval_samples)
    columns = first_rows(columns, limit, split)
    log.info("loaded %d %s examples from %s", len(columns["sentence"]), split, source)
    return columns


def first_rows(columns: dict[str, list], limit: int | None, what: str) -> dict[str, list]:
    """The first `limit` rows of every column (all of them when `limit` is None)."""
    if limit is None:
        return columns
    if limit <= 0:
        raise UserError(f"max samples for {what} must be positive, got {limit}")
    return {k: v[:limit] for k, v in columns.items()}


def load_training_data(cfg: DataConfig, task: Task) -> tuple[Task, dict[str, list]]:
    """The training split, and the task with its label names (a custom task's come from this file: the whole of
    it, so that --max-train-samples cuts the rows, not the classes the model has)."""
    train = load_columns(dataclasses.replace(cfg, max_train_samples=None), task, "train")
    task, train = with_found_labels(task, train, split_source(cfg, task, "train"))
    return task, first_rows(train, cfg.max_train_samples, "train")


def load_run_data(data: DataConfig) -> tuple[Task, dict[str, list], dict[str, dict[str, list]]]:
    """What a training run or baseline reads: the task (a custom task with its labels), the training columns and
    every labelled evaluation set (labelled_eval_sets)."""
    task, train = load_training_data(data, task_for(data))
    if data.train_file and data.validation_file and \
            Path(data.train_file).resolve() == Path(data.validation_file).resolve():
        log.warning("--train-file and --validation-file are one file (%s): its dev scores are on the training data, "
                    "not held out", data.validation_file)
    return task, train, labelled_eval_sets(data, task, load_columns(data, task, "validation"))


def labelled_eval_sets(data, task, dev: dict[str, list]) -> dict[str, dict[str, list]]:
    """{"dev": dev columns, the task's other labelled dev sets (MNLI: "dev_mismatched"), "test": a labelled
    test file's columns} — test only when --test-file names a labelled file."""
    if "label" not in dev:
        raise UserError("the validation split has no labels")
    sets = {"dev": dev}
    if not data.validation_file:  # a task's own folder or the Hub (a --test-file keeps them)
        for name, split in task.extra_eval.items():
            sets[name] = load_columns(data, task, split)
    if data.test_file:
        test = load_columns(data, task, "test")
        if "label" not in test:
            raise UserError(f"{data.test_file}: the test file has no '{task.label_column}' column to evaluate "
                            f"against")
        sets["test"] = test
    return sets


def texts_of(columns: dict[str, list]) -> list:
    """The model inputs of a split: its sentences, or (sentence, sentence2) pairs."""
    if "sentence2" in columns:
        return list(zip(columns["sentence"], columns["sentence2"]))
    return list(columns["sentence"])


def _load_from_hub(task: Task, split: str, hint: str = DATA_DIR_HINT, *, ids: bool = False) -> dict[str, list]:
    from .hub import hub_available

    where = f"{HUB_PATH}/{task.hub_config}"
    if not hub_available():
        raise UserError(f"the Hugging Face Hub is not reachable to load {where}: {hint}")
    import datasets

    try:
        ds = datasets.load_dataset(HUB_PATH, task.hub_config, split=task.hub_splits.get(split, split))
    except Exception as exc:  # network and hub errors come in many types
        raise UserError(f"could not load {where} from the Hub ({exc}): {hint}") from None
    names = task.hub_text_columns or task.text_columns
    columns = {key: list(ds[name]) for key, name in zip(TEXT_KEYS, names)}
    labels = list(ds["label"])
    if any(label >= 0 for label in labels):  # GLUE's hidden test labels are -1
        columns["label"] = [float(v) for v in labels] if task.regression else labels
    if ids:  # the Hub's idx: the id GLUE's test file gives the row (its index, QQP's id), as the file path reads it
        columns[ID_KEY] = [str(int(i)) for i in ds["idx"]]
    return columns


def tokenize(dataset, tokenizer, max_length: int):
    """Tokenize once (token ids only, as `encode_texts`); adds `length` (for length grouping) and renames
    label -> labels for the Trainer."""
    texts = [key for key in TEXT_KEYS if key in dataset.column_names]

    def encode(batch):
        pairs = list(zip(*(batch[key] for key in texts))) if len(texts) == 2 else batch["sentence"]
        ids = encode_texts(tokenizer, pairs, max_length)
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    out = dataset.map(encode, batched=True, remove_columns=texts, desc="tokenize")
    if "label" in out.column_names:
        out = out.rename_column("label", "labels")
    return out


def token_limit(tokenizer, max_length: int) -> int:
    """The length inputs are really cut at: the run's max_length, or the tokenizer's own limit if lower."""
    return min(max_length, tokenizer.model_max_length)


def encode_texts(tokenizer, texts: list, max_length: int, exact: bool = False, side: str = "right") -> list[list[int]]:
    """Token ids per text or (text, text) pair, truncated to `max_length` or the tokenizer's own limit, whichever
    is lower (a pair: the longer text first, as `longest_first` does), cutting the end (`side` "left": the start).
    `exact`: to `max_length` even past the tokenizer's limit (a saved model's tokenizer carries its run's limit:
    the server counts one token past it).

    Only the ids: masks are made per padded batch, and segment ids (BERT's token_type_ids) follow from the ids
    (segments.type_ids). Special tokens written in the text ("[SEP]") are split as ordinary text, so that no
    input can forge a separator and every separator in the ids is the tokenizer's own.
    """
    limit = max_length if exact else token_limit(tokenizer, max_length)
    if not texts:
        return []
    pairs = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    kwargs = dict(truncation=True, max_length=limit, return_attention_mask=False, return_token_type_ids=False,
                  split_special_tokens=True)
    if pairs and len(pairs) < len(texts):  # a mix (the server's batches): pairs and single texts apart
        out: list = [None] * len(texts)
        single = [i for i, t in enumerate(texts) if isinstance(t, str)]
        for indices in (pairs, single):
            for index, ids in zip(indices, encode_texts(tokenizer, [texts[i] for i in indices], limit, True, side)):
                out[index] = ids
        return out
    args = [list(part) for part in zip(*texts)] if pairs else [texts]
    default, tokenizer.truncation_side = tokenizer.truncation_side, side  # the tokenizer takes no per-call side
    try:
        return tokenizer(*args, **kwargs)["input_ids"]
    finally:
        tokenizer.truncation_side = default
