"""Reading one data file (tsv, csv, jsonl, parquet, or plain lines) into a task's columns, checked row by row.

Every problem with a file becomes a UserError naming the file and, where there is one, the line: missing file or
column, a label outside the task's labels, an empty text, bytes that are not UTF-8, zero rows. Nothing is dropped
silently. A BOM and CRLF line endings are read as GLUE's files need (MRPC ships with a BOM).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .errors import UserError, first_line
from .labels import is_integer_text, parse_label
from .tasks import ID_KEY, TEXT_KEYS, Task, texts_kind

log = logging.getLogger(__name__)

FORMATS = (".tsv", ".csv", ".jsonl", ".parquet")
MAX_TEXT_CHARS = 100_000  # far past any max length; a longer "sentence" is a broken file, not text


def read_examples(path: str | Path, task: Task, *, require_label: bool = True,
                  id_column: str | None = None) -> dict[str, list]:
    """Read one file into {"sentence": [...], "label": [...]} ("label" absent when the file has none); with
    `id_column`, each row's id too, under ID_KEY (the column must be there, its values distinct whole numbers)."""
    path = _existing_file(path)
    suffix = path.suffix.lower()
    layout = task.headerless.get(path.name)
    if suffix == ".tsv":
        rows = _read_delimited(path, "\t", layout, task.text_columns[0], task.skip_malformed_rows)
    elif suffix == ".csv":
        rows = _read_delimited(path, ",", layout, task.text_columns[0], task.skip_malformed_rows)
    elif suffix == ".jsonl":
        rows = _read_jsonl(path)
    elif suffix == ".parquet":
        rows = _read_parquet(path)
    else:
        raise UserError(f"{path}: unsupported file type '{suffix}' (use {', '.join(FORMATS)})")
    return _validate(path, rows, task, require_label, id_column)


def header_columns(path: str | Path) -> list[str] | None:
    """A file's column names (tsv/csv header, first JSON object's keys, parquet schema), or None when they cannot
    be read (read_examples then says why)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():  # (read_examples says why; a pipe read here would hang or lose its rows)
        return None
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with open(path, "rb") as handle:  # the first line only (MNLI's train.tsv is 330 MB)
            head = handle.read(1 << 20)
            head = head if b"\n" in head else head + handle.read()
        first = next(_decoded_lines(head.split(b"\n", 1)[0], path), (0, ""))[1]
        if not first.strip():  # an empty file, or a blank first line: no header to name
            return None
        if suffix == ".jsonl":
            record = json.loads(first)
            return list(record) if isinstance(record, dict) else None
        return first.split("\t") if suffix == ".tsv" else next(csv.reader(io.StringIO(first)), [])
    except Exception:  # unreadable in any of several ways: read_examples reports it properly
        return None


GENERIC_TEXTS = {1: ("sentence",), 2: ("sentence1", "sentence2")}  # GLUE's own names, as its Hub exports have them


def with_file_columns(path: str | Path, task: Task, *, texts_given: bool = False, label_given: bool = False) -> Task:
    """The task reading `path` by the names its header has, where no option named them: the task's own (its GLUE
    files'), else its Hub's (MNLI's premise, hypothesis) or GLUE's generic ones (sentence; sentence1, sentence2),
    and `label` for the label: a file exported from the Hub, or one `evaluate` scores, trains too. Otherwise the
    task as it is (read_examples names what is missing); so too for a headerless GLUE file."""
    header = None if Path(path).name in task.headerless else header_columns(path)
    if header is None:
        return task
    if not label_given and task.label_column not in header and "label" in header:
        task = task.with_columns(None, "label")
    if texts_given or set(task.text_columns) <= set(header):
        return task
    for names in text_column_names(task)[1:]:
        if set(names) <= set(header):
            return task.with_columns(names, None)
    return task


def text_column_names(task: Task) -> list[tuple[str, ...]]:
    """The text columns a file of `task` may have, in the order tried: the task's own, its Hub's, GLUE's generic."""
    from .tasks import TASKS

    hub = TASKS[task.name].hub_text_columns if task.name in TASKS else ()
    names = [task.text_columns, hub, GENERIC_TEXTS[len(task.text_columns)]]
    return list(dict.fromkeys(n for n in names if len(n) == len(task.text_columns)))


def _existing_file(path: str | Path, *, regular: bool = True) -> Path:
    """`path`, a file that is there; `regular`: a file on disk, not a pipe or device (a table is read twice, its
    header first: a pipe would give its rows once, and one nobody writes to would hang)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a file")
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if regular and not path.is_file():
        raise UserError(f"{path}: not a regular file (a pipe or a device); give a file on disk")
    return path


STDIN = "<stdin>"


def read_lines(path: str | Path | None) -> list[str]:
    """Plain text, one sentence per line, from a file or (None or "-") stdin, decoded alike: strict UTF-8, a BOM
    and CRLF endings removed. The final newline does not make an empty last line."""
    if path is None or str(path) == "-":
        if sys.stdin is None:  # started with stdin closed (`<&-`)
            raise UserError(f"{STDIN}: closed; give the texts as arguments or --input FILE")
        name, raw = STDIN, sys.stdin.buffer.read()
    else:
        path = _existing_file(path, regular=False)  # lines of text may come through a pipe: --input <(cut ...)
        name, raw = str(path), path.read_bytes()
    texts = []
    for lineno, line in _decoded_lines(raw, name):
        if not line.strip():
            raise UserError(f"{name}, line {lineno}: empty line (every line must hold a sentence)")
        texts.append(line)
    if not texts:
        raise UserError(f"{name}: no rows" + " (give texts as arguments, --input FILE, or lines on stdin)" * (name == STDIN))
    return texts


def _decoded_lines(raw: bytes, name: str | Path):
    """(line number, text) for each line of a file's (or stdin's) bytes, strictly UTF-8; a trailing newline, or
    blank lines at the end, add no line (a blank line before a row is the reader's to refuse)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # what Windows tools often save as "Unicode"
        raise UserError(f"{name}: UTF-16 text (it starts with UTF-16's byte-order mark); save it as UTF-8")
    if raw[:200].count(b"\x00") * 4 >= len(raw[:200]) > 0:  # every other byte 0: UTF-16 without its mark
        raise UserError(f"{name}: UTF-16 text (every other byte is 0); save it as UTF-8")
    if b"\n" not in raw and b"\r" in raw.rstrip(b"\r"):  # split on \n only, such a file is one line: "no rows"
        raise UserError(f"{name}: its line endings are CR only (classic Mac OS), which are not read as line breaks; "
                        "save it with LF or CRLF line endings")
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():  # the final newline, and blank lines an editor left at the end
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{name}, line {lineno}: not valid UTF-8 (byte {exc.start + 1} of the line)") from None
        if lineno == 1:
            text = text.removeprefix("\ufeff")
        yield lineno, text.removesuffix("\r")


def _read_delimited(path: Path, delimiter: str, layout: tuple[str, ...] | None = None,
                    text_column: str = "", skip_malformed: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """tsv: no quoting (GLUE's files contain bare `"`); csv: standard quoting, one record per line.
    `layout`: the column names of a file the GLUE distribution ships without a header (CoLA train/dev), used
    when the first line is not a header naming `text_column`."""
    lines = list(_decoded_lines(path.read_bytes(), path))
    if not lines:
        raise UserError(f"{path}: empty file (expected a header row)")
    if delimiter == "\t":
        split = lambda lineno, text: text.split("\t")
    else:
        split = lambda lineno, text: _csv_fields(text, f"{path}, line {lineno}")
    if layout and text_column not in split(*lines[0]):
        lines = [(0, delimiter.join(layout)), *lines]
    header = split(*lines[0])
    if (repeated := _repeated(header)) is not None:
        raise UserError(f"{path}, line 1: column {repeated!r} appears more than once in the header")
    rows, skipped = [], []
    for lineno, text in lines[1:]:
        fields = split(lineno, text)
        if len(fields) != len(header) and skip_malformed:
            skipped.append(lineno)
            continue
        if not text.strip():
            raise UserError(f"{path}, line {lineno}: empty line (every line must hold a row)")
        if len(fields) != len(header):
            raise UserError(
                f"{path}, line {lineno}: expected {len(header)} fields separated by {delimiter!r}, found {len(fields)}"
            )
        rows.append((lineno, dict(zip(header, fields))))
    if skipped:
        log.warning("%s: skipped %d row(s) without %d fields (line %s%s), as GLUE's processors do", path,
                    len(skipped), len(header), skipped[0], " ..." if len(skipped) > 1 else "")
    return rows


def _csv_fields(text: str, where: str) -> list[str]:
    """One line's csv fields. A quote still open at the line's end is a field with a line break in it: this reader
    takes one record per line, and csv.reader alone would end the field there, leaving the rest of it for a
    "wrong number of fields" on this line or the next."""
    fields = next(csv.reader(io.StringIO(text)), [])
    if '"' in text:  # only a quote can open a field that runs on; the strict reader says whether one does
        try:
            next(csv.reader(io.StringIO(text), strict=True), [])
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise UserError(f"{where}: a quoted field runs past the end of the line; fields spanning lines (a "
                                "line break inside quotes) are not supported: one record per line") from None
    return fields


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for lineno, text in _decoded_lines(path.read_bytes(), path):
        if not text.strip():
            raise UserError(f"{path}, line {lineno}: empty line (expected a JSON object)")
        try:
            record = json.loads(text, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}, line {lineno}: not valid JSON ({exc.msg})") from None
        except KeyError as exc:
            raise UserError(f"{path}, line {lineno}: key {exc.args[0]!r} appears more than once") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}, line {lineno}: expected a JSON object, found {type(record).__name__}")
        rows.append((lineno, record))
    return rows


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are distinct (json keeps the last of a repeated one, silently)."""
    record = dict(pairs)
    if len(record) < len(pairs):
        raise KeyError(_repeated([key for key, _ in pairs]))
    return record


def _repeated(names: list[str]) -> str | None:
    """The first, in sorted order, of the names that occur more than once; None when every name is distinct."""
    seen, repeated = set(), set()
    for name in names:
        (repeated if name in seen else seen).add(name)
    return min(repeated) if repeated else None


def _read_parquet(path: Path) -> list[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        if (repeated := _repeated(names)) is not None:  # pyarrow's own error prints its whole schema
            raise UserError(f"{path}: column {repeated!r} appears more than once")
        table = pq.read_table(path)
    except UserError:
        raise
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise UserError(f"{path}: cannot read as parquet ({first_line(exc)})") from None
    return [(i, row) for i, row in enumerate(table.to_pylist(), start=1)]


def _validate(path: Path, rows: list[tuple[int, dict]], task: Task, require_label: bool,
              id_column: str | None = None) -> dict[str, list]:
    parquet = path.suffix.lower() == ".parquet"
    where = (lambda n: f"{path}, row {n}") if parquet else (lambda n: f"{path}, line {n}")
    if not rows:
        raise UserError(f"{path}: no rows")
    columns = rows[0][1].keys()
    found = ", ".join(map(str, columns)) or "none"
    for name in task.text_columns:
        if name not in columns:
            kind = f"{task.name} classifies {texts_kind(len(task.text_columns))}: "
            raise UserError(f"{path}: missing column '{name}' ({kind}expected {', '.join(task.text_columns)}; "
                            f"found: {found}); name yours with --text-columns")
    label_col = task.label_column
    has_label = label_col is not None and label_col in columns
    if require_label and not has_label:
        raise UserError(f"{path}: missing label column '{label_col}' (found: {found}); name yours with --label-column")
    out: dict[str, list] = {key: [] for key in TEXT_KEYS[: len(task.text_columns)]}
    labels = []
    for lineno, record in rows:
        for key, name in zip(TEXT_KEYS, task.text_columns):
            out[key].append(_text(_field(record, name, where(lineno)), name, where(lineno)))
        if has_label:
            labels.append(parse_label(_field(record, label_col, where(lineno)), task, where(lineno)))
    if has_label:
        out["label"] = labels
    if id_column is not None:
        out[ID_KEY] = _ids(path, rows, id_column, where, found)
    return out


def _ids(path: Path, rows: list[tuple[int, dict]], column: str, where, found: str) -> list[str]:
    """Each row's id, as the whole number it holds: what the GLUE server matches a prediction to its row by."""
    if column not in rows[0][1]:
        raise UserError(f"{path}: missing id column '{column}' (the GLUE server matches each prediction to its row "
                        f"by it; found: {found})")
    unit = "row" if path.suffix.lower() == ".parquet" else "line"
    ids, first_at = [], {}
    for lineno, record in rows:
        value = _field(record, column, where(lineno))
        number = isinstance(value, int) and not isinstance(value, bool)  # jsonl and parquet ids may be numbers
        if not (number or isinstance(value, str) and is_integer_text(value)):
            raise UserError(f"{where(lineno)}: '{column}' must be a whole number (the row's id), found {value!r}")
        value = str(int(value))  # "007" and the Hub's 7 name the same row
        if value in first_at:
            raise UserError(f"{where(lineno)}: '{column}' {value} is the id of {unit} {first_at[value]} too")
        first_at[value] = lineno
        ids.append(value)
    return ids


def _field(record: dict, name: str, where: str) -> Any:
    """A row's field; a JSON line without it (the first line's keys are the columns) is named as such."""
    if name not in record:
        raise UserError(f"{where}: no '{name}' field (the first row has it)")
    return record[name]


def _text(value: Any, column: str, where: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where}: '{column}' must be text, found {value!r}")
    if not value.strip():
        raise UserError(f"{where}: empty '{column}'")
    if not is_valid_unicode(value):
        raise UserError(f"{where}: '{column}' is not valid Unicode (a lone surrogate such as \\ud800)")
    if len(value) > MAX_TEXT_CHARS:
        raise UserError(f"{where}: '{column}' has {len(value):,} characters; the limit is {MAX_TEXT_CHARS:,}")
    return value


def is_valid_unicode(text: str) -> bool:
    """False for a lone surrogate, which JSON escapes (\\ud800) and undecodable shell bytes produce and no
    tokenizer accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
