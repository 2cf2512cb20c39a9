"""Batched inference with a saved classifier: probabilities, labelled predictions, evaluation."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DataConfig
from .data import FORMATS, load_split, read_examples, read_lines
from .errors import UserError
from .metrics import evaluation_report
from .models import load_saved_classifier
from .tasks import get_task

log = logging.getLogger(__name__)

PREDICT_PATHS = ("padded", "dynamic", "grouped", "packed")


@dataclass
class Classifier:
    """A loaded model + tokenizer; `probabilities` batches texts by length and restores input order."""

    model: object
    tokenizer: object
    max_length: int = 512
    batch_size: int = 64
    input_path: str = "auto"  # auto = grouped: batches of length-sorted texts have almost no padding
    bf16: bool = False  # bf16 autocast (CPUs with AVX-512 BF16/AMX, recent GPUs)

    @classmethod
    def load(cls, folder: str, **kwargs) -> Classifier:
        model, tokenizer = load_saved_classifier(folder)
        model.eval()
        return cls(model=model, tokenizer=tokenizer, **kwargs)

    @property
    def label_names(self) -> list[str]:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text (what `probabilities_encoded` takes); the server tokenizes once with this."""
        return encode_texts(self.tokenizer, texts, self.max_length)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.probabilities_encoded(self.encode(texts))

    def probabilities_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        import torch

        if not encoded:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        limit = min(self.max_length, self.tokenizer.model_max_length)
        path = "grouped" if self.input_path == "auto" else self.input_path
        if path not in PREDICT_PATHS:
            raise UserError(f"input path must be one of auto, {', '.join(PREDICT_PATHS)}, got '{path}'")
        device = next(self.model.parameters()).device
        packed_model = None
        if path == "packed":
            from .packing import PackedClassifier, pack

            packed_model = PackedClassifier(self.model)

        def run(seqs: list[list[int]]) -> np.ndarray:
            if packed_model is not None:
                logits = packed_model(pack(seqs, pad_id=self.tokenizer.pad_token_id)).logits
            else:
                ids, mask = pad_ids(seqs, self.tokenizer, width=limit if path == "padded" else None)
                logits = self.model(input_ids=torch.from_numpy(ids).to(device),
                                    attention_mask=torch.from_numpy(mask).to(device)).logits
            return torch.softmax(logits.float(), dim=-1).cpu().numpy()

        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)
        with torch.inference_mode(), autocast:
            return sorted_batches(encoded, self.batch_size, run, len(self.label_names), sort=path == "grouped")

    def predict(self, texts: list[str]) -> list[dict]:
        return predict_records(self, texts)


def predict_records(model, texts: list[str]) -> list[dict]:
    """[{"text", "label", "score"}] in input order; `score` is the predicted label's probability.
    `model` is anything with `probabilities(texts)` and `label_names` (a Classifier or a baseline)."""
    probs = model.probabilities(texts)
    names = model.label_names
    return [{"text": text, "label": names[int(p.argmax())], "score": float(p.max())} for text, p in zip(texts, probs)]


def predict_texts(folder: str, texts: list[str], backend: str = "torch", **options) -> list[dict]:
    """Load a model and classify `texts`; logs the classification rate with loading excluded (to stderr)."""
    import time

    model = load_model(folder, backend, **options)
    started = time.perf_counter()
    records = predict_records(model, texts)
    seconds = time.perf_counter() - started
    log.info("classified %d texts in %.3f s (%.1f texts/s, model loading excluded)", len(texts), seconds,
             len(texts) / max(seconds, 1e-9))
    return records


def load_model(folder: str, backend: str = "torch", **kwargs):
    """A fine-tuned classifier folder, an ONNX export folder (backend onnx) or a baseline's model folder,
    behind the same two members (`probabilities`, `label_names`)."""
    from .baselines import BaselineModel, is_baseline_folder
    from .export import OnnxClassifier, is_export_folder

    from .outputs import check_model_finished

    if backend not in ("torch", "onnx"):
        raise UserError(f"--backend must be torch or onnx, got '{backend}'")
    check_model_finished(folder)
    kwargs = {key: value for key, value in kwargs.items() if value is not None}  # None: the backend's default
    if kwargs.get("batch_size", 1) < 1:
        raise UserError(f"--batch-size must be at least 1, got {kwargs['batch_size']}")
    if backend == "onnx":
        return OnnxClassifier(folder, **{k: v for k, v in kwargs.items() if k in ("batch_size", "spin")})
    if is_export_folder(folder):
        raise UserError(f"{folder}: an ONNX export folder; pass --backend onnx")
    if is_baseline_folder(folder):
        return BaselineModel.load(folder)  # batching options do not apply
    return Classifier.load(folder, **kwargs)


def encode_texts(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to `max_length` or the tokenizer's own limit, whichever is lower."""
    limit = min(max_length, tokenizer.model_max_length)
    if not texts:
        return []
    # Only the ids: the masks are made per padded batch, and building them here as Python lists costs time.
    return tokenizer(texts, truncation=True, max_length=limit, return_attention_mask=False,
                     return_token_type_ids=False)["input_ids"]


def pad_ids(seqs: list[list[int]], tokenizer, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays, padded to the longest (or `width`) on the tokenizer's side.

    What `tokenizer.pad` returns for ids-only input, without its per-example Python work (~2% of int8 inference).
    """
    width = width or max(len(ids) for ids in seqs)
    input_ids = np.full((len(seqs), width), tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    left = tokenizer.padding_side == "left"
    for row, ids in enumerate(seqs):
        span = slice(width - len(ids), width) if left else slice(0, len(ids))
        input_ids[row, span] = ids
        mask[row, span] = 1
    return input_ids, mask


def sorted_batches(encoded: list[list[int]], batch_size: int, run, num_labels: int, pool=None,
                   workers: int = 1, sort: bool = True) -> np.ndarray:
    """Run `run(list of token id lists) -> probabilities` over length-sorted batches (in input order when not
    `sort`); rows of the result in input order. Batches split the texts evenly: 72 texts in batches of at
    most 64 run as two of 36, which pad less than 64 + 8.

    With `pool` (an executor of `workers` threads) batches run concurrently; their number is rounded up to a
    multiple of `workers` (batches at most `batch_size`, evenly sized) so that no worker idles while another
    finishes, as with a server's small batches: 8 texts run as two batches of 4 on two workers.
    """
    order = np.argsort([len(ids) for ids in encoded], kind="stable") if sort else np.arange(len(encoded))
    out = np.zeros((len(encoded), num_labels), dtype=np.float32)
    if not len(order):
        return out
    count = -(-len(order) // batch_size)
    if pool is not None:
        count = min(len(order), -(-count // workers) * workers)
    chunks = np.array_split(order, count)
    inputs = [[encoded[i] for i in idx] for idx in chunks]
    results = pool.map(run, inputs) if pool is not None else map(run, inputs)
    for idx, probs in zip(chunks, results):
        out[idx] = probs
    return out


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


def evaluate(model_dir: str, *, data: DataConfig, split: str = "validation", file: str | None = None) -> dict:
    """Metrics of a saved model on a labelled split or file: {"accuracy", "f1", "mcc", "n"} with
    95% bootstrap intervals (`*_ci`) and the expected calibration error (`ece`)."""
    task = get_task(data.task)
    if file:
        columns = read_examples(file, task, require_label=True)
        sentences, labels = columns["sentence"], columns["label"]
    else:
        dataset = load_split(data, task, split)
        if "label" not in dataset.column_names:
            raise UserError(f"split '{split}' has no labels to evaluate against (use --file with a labelled file)")
        sentences, labels = dataset["sentence"], dataset["label"]
    probs = load_model(model_dir).probabilities(list(sentences))
    return evaluation_report(list(sentences), labels, probs)["scalars"]
