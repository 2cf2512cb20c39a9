"""Load and validate labelled sentences (Hub, GLUE folder, tsv/csv/jsonl/parquet files); tokenize.

Every problem with a file becomes a UserError naming the file and, where there is one, the line:
missing file or column, a label outside the task's ids, an empty sentence, bytes that are not UTF-8,
zero rows. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from .config import DataConfig
from .errors import UserError
from .tasks import Task

log = logging.getLogger(__name__)

DATA_DIR_ENV = "MODERNBERT_GLUE_DATA_DIR"
FORMATS = (".tsv", ".csv", ".jsonl", ".parquet")
SPLITS = ("train", "validation", "test")
MAX_TEXT_CHARS = 100_000  # far past any max length; a longer "sentence" is a broken file, not text


def read_examples(path: str | Path, task: Task, *, require_label: bool = True) -> dict[str, list]:
    """Read one file into {"sentence": [...], "label": [...]} ("label" absent when the file has none)."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        rows = _read_delimited(path, delimiter="\t")
    elif suffix == ".csv":
        rows = _read_delimited(path, delimiter=",")
    elif suffix == ".jsonl":
        rows = _read_jsonl(path)
    elif suffix == ".parquet":
        rows = _read_parquet(path)
    else:
        raise UserError(f"{path}: unsupported file type '{suffix}' (use {', '.join(FORMATS)})")
    return _validate(path, rows, task, require_label)


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a file")
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    return path


def read_lines(path: str | Path) -> list[str]:
    """Plain text, one sentence per line. The final newline does not make an empty last line."""
    path = _existing_file(path)
    texts = []
    for lineno, line in _decoded_lines(path):
        if not line.strip():
            raise UserError(f"{path}, line {lineno}: empty line (every line must hold a sentence)")
        texts.append(line)
    if not texts:
        raise UserError(f"{path}: no rows")
    return texts


def _decoded_lines(path: Path):
    """(line number, text) for each line, strictly UTF-8; a trailing newline adds no line."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}, line {lineno}: not valid UTF-8 (byte {exc.start + 1} of the line)") from None
        if lineno == 1:
            text = text.removeprefix("\ufeff")
        yield lineno, text.removesuffix("\r")


def _read_delimited(path: Path, delimiter: str) -> list[tuple[int, dict[str, Any]]]:
    """tsv: no quoting (GLUE's files contain bare `"`); csv: standard quoting, one record per line."""
    lines = list(_decoded_lines(path))
    if not lines:
        raise UserError(f"{path}: empty file (expected a header row)")
    if delimiter == "\t":
        split = lambda text: text.split("\t")  # noqa: E731
    else:
        split = lambda text: next(csv.reader(io.StringIO(text)), [])  # noqa: E731
    header = split(lines[0][1])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UserError(f"{path}, line 1: column {repeated[0]!r} appears more than once in the header")
    rows = []
    for lineno, text in lines[1:]:
        fields = split(text)
        if len(fields) != len(header):
            raise UserError(
                f"{path}, line {lineno}: expected {len(header)} fields separated by {delimiter!r}, found {len(fields)}"
            )
        rows.append((lineno, dict(zip(header, fields))))
    return rows


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for lineno, text in _decoded_lines(path):
        if not text.strip():
            raise UserError(f"{path}, line {lineno}: empty line (expected a JSON object)")
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}, line {lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}, line {lineno}: expected a JSON object, found {type(record).__name__}")
        rows.append((lineno, record))
    return rows


def _read_parquet(path: Path) -> list[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise UserError(f"{path}: cannot read as parquet ({exc})") from None
    return [(i, row) for i, row in enumerate(table.to_pylist(), start=1)]


def _validate(path: Path, rows: list[tuple[int, dict]], task: Task, require_label: bool) -> dict[str, list]:
    parquet = path.suffix.lower() == ".parquet"
    where = (lambda n: f"{path}, row {n}") if parquet else (lambda n: f"{path}, line {n}")  # noqa: E731
    text_col = task.text_column
    if not rows:
        raise UserError(f"{path}: no rows")
    columns = rows[0][1].keys()
    if text_col not in columns:
        raise UserError(f"{path}: missing column '{text_col}' (found: {', '.join(map(str, columns)) or 'none'})")
    has_label = "label" in columns
    if require_label and not has_label:
        raise UserError(f"{path}: missing column 'label' (found: {', '.join(map(str, columns))})")
    sentences, labels = [], []
    for lineno, record in rows:
        sentence = record.get(text_col)
        if not isinstance(sentence, str):
            raise UserError(f"{where(lineno)}: '{text_col}' must be text, found {sentence!r}")
        if not sentence.strip():
            raise UserError(f"{where(lineno)}: empty sentence")
        if len(sentence) > MAX_TEXT_CHARS:
            raise UserError(f"{where(lineno)}: '{text_col}' has {len(sentence):,} characters; the limit is "
                            f"{MAX_TEXT_CHARS:,}")
        sentences.append(sentence)
        if has_label:
            labels.append(_parse_label(record.get("label"), task, where(lineno)))
    out: dict[str, list] = {"sentence": sentences}
    if has_label:
        out["label"] = labels
    return out


def _parse_label(value: Any, task: Task, where: str) -> int:
    ids = range(task.num_labels)
    label = None
    if isinstance(value, int) and not isinstance(value, bool):
        label = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        label = int(value)
    if label not in ids:
        allowed = ", ".join(map(str, ids))
        raise UserError(f"{where}: label {value!r} is not one of {allowed}")
    return label


def split_source(cfg: DataConfig, task: Task, split: str) -> str:
    """Where a split comes from: a file path, or 'hub' (nyu-mll/glue)."""
    explicit = {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}[split]
    if explicit:
        return explicit
    data_dir = cfg.data_dir or os.environ.get(DATA_DIR_ENV) or None
    if data_dir:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise UserError(f"{folder}: data folder not found")
        return str(folder / task.split_files[split])
    return "hub"


def load_split(cfg: DataConfig, task: Task, split: str):
    """One split as a datasets.Dataset (what the HF Trainer takes): `load_columns` wrapped."""
    from datasets import Dataset

    return Dataset.from_dict(load_columns(cfg, task, split))


def load_columns(cfg: DataConfig, task: Task, split: str) -> dict[str, list]:
    """One split as {"sentence": [...], "label": [...]} ("label" where known), checked row by row. Needs no
    `datasets` for files (the training engine runs where that package is not installed); the Hub does."""
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}' (use {', '.join(SPLITS)})")
    source = split_source(cfg, task, split)
    if source == "hub":
        columns = _load_from_hub(task, split)
    else:
        columns = read_examples(source, task, require_label=split != "test")
    limit = {"train": cfg.max_train_samples, "validation": cfg.max_eval_samples}.get(split)
    if limit is not None:
        if limit <= 0:
            raise UserError(f"max samples for {split} must be positive, got {limit}")
        columns = {k: v[:limit] for k, v in columns.items()}
    log.info("loaded %d %s examples from %s", len(columns["sentence"]), split, source)
    return columns


def labelled_eval_sets(data, task, dev: dict[str, list]) -> dict[str, dict[str, list]]:
    """{"dev": dev columns, "test": labelled test file's columns} — test only when --test-file names a
    labelled file."""
    if "label" not in dev:
        raise UserError("the validation split has no labels")
    sets = {"dev": dev}
    if data.test_file:
        test = load_columns(data, task, "test")
        if "label" not in test:
            raise UserError(f"{data.test_file}: the test file has no 'label' column to evaluate against")
        sets["test"] = test
    return sets


def _load_from_hub(task: Task, split: str) -> dict[str, list]:
    from .hub import hub_available

    hint = f"pass --data-dir FOLDER (GLUE tsv files) or set ${DATA_DIR_ENV}"
    if not hub_available():
        raise UserError(f"the Hugging Face Hub is not reachable to load {task.hub_path}/{task.hub_config}: {hint}")
    import datasets

    try:
        ds = datasets.load_dataset(task.hub_path, task.hub_config, split=split)
    except Exception as exc:  # network and hub errors come in many types
        raise UserError(f"could not load {task.hub_path}/{task.hub_config} from the Hub ({exc}): {hint}") from None
    columns = {"sentence": list(ds[task.text_column])}
    labels = list(ds["label"])
    if any(label >= 0 for label in labels):  # GLUE's hidden test labels are -1
        columns["label"] = labels
    return columns


def tokenize(dataset, tokenizer, max_length: int):
    """Tokenize once; adds `length` (for length grouping) and renames label -> labels for the Trainer."""

    def encode(batch):
        enc = tokenizer(batch["sentence"], truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    out = dataset.map(encode, batched=True, remove_columns=["sentence"], desc="tokenize")
    if "label" in out.column_names:
        out = out.rename_column("label", "labels")
    return out


def encode_texts(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to `max_length` or the tokenizer's own limit, whichever is lower."""
    limit = min(max_length, tokenizer.model_max_length)
    if not texts:
        return []
    # Only the ids: the masks are made per padded batch, and building them here as Python lists costs time.
    return tokenizer(texts, truncation=True, max_length=limit, return_attention_mask=False,
                     return_token_type_ids=False)["input_ids"]
