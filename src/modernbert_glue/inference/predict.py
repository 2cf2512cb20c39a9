"""`predict`: texts from arguments, a file or stdin, classified by any backend, one JSON record each."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from ..data import FORMATS, read_examples, read_lines
from ..errors import UserError
from ..tasks import get_task
from .backends import load_model, predict_records

log = logging.getLogger(__name__)


def predict_texts(folder: str, texts: list[str], backend: str = "torch", **options) -> list[dict]:
    """Load a model and classify `texts`; logs the classification rate with loading excluded (to stderr)."""
    model = load_model(folder, backend, **options)
    started = time.perf_counter()
    records = predict_records(model, texts)
    seconds = time.perf_counter() - started
    log.info("classified %d texts in %.3f s (%.1f texts/s, model loading excluded)", len(texts), seconds,
             len(texts) / max(seconds, 1e-9))
    return records


def read_texts(path: str | None, texts: list[str] | None = None) -> list[str]:
    """Texts from arguments, a file (plain text per line, or tsv/csv/jsonl/parquet with `sentence`), or stdin."""
    if texts:
        for i, text in enumerate(texts, start=1):
            if not text.strip():
                raise UserError(f"text argument {i} is empty")
        return list(texts)
    if path is None or path == "-":
        lines = sys.stdin.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                raise UserError(f"<stdin>, line {i}: empty line (every line must hold a sentence)")
        if not lines:
            raise UserError("<stdin>: no input (give texts as arguments, --input FILE, or lines on stdin)")
        return lines
    if Path(path).suffix.lower() in FORMATS:
        return read_examples(path, get_task("sst2"), require_label=False)["sentence"]
    return read_lines(path)
