"""Input paths: how tokenized sentences become model batches. One vocabulary, one `auto` rule, one collation.

    padded   every sentence padded to max_length (run_glue.py's default)
    dynamic  random batches padded to their longest sentence (the Trainer's default)
    grouped  length-grouped batches padded to their longest (training: the Trainer's group_by_length;
             inference: batches of length-sorted sentences)
    packed   batches concatenated without padding into rows of PACKED_ROW_TOKENS (packing.py)

The Trainer's collators, `predict`, `serve`, the ONNX backend and `bench` all collate through `pad_batch` and
`pack_batch` below: numpy arrays for inference (what onnxruntime takes), tensors for training, from the same
code. Every per-token field (input_ids, attention_mask, token_type_ids) is made there.

Sentence pairs arrive as one id list ([CLS] a [SEP] b [SEP]); a model with segment embeddings (BERT's
token_type_ids) gets them from `segments.type_ids`: 0 up to and including the first separator, 1 after it — what the
tokenizer itself returns, since encoding never lets text forge a separator (data.encode_texts).
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .segments import label_array, sep_for, type_ids  # noqa: F401  (part of this module's interface)

PATHS = ("padded", "dynamic", "grouped", "packed")
INPUT_PATHS = ("auto", *PATHS)
PACKED_MODEL_TYPES = ("modernbert", "bert")
PACKED_ROW_TOKENS = 256  # attention cost grows with a packed row's square; 256 was faster than one long row

# `auto`, by (use, device) and model type; anything not listed gets grouped batches. Each entry is the fastest
# path measured for that case:
# - train, cpu: ModernBERT-base packed 1.13x grouped (benchmarks/results/bench-train-cpu.json); all-MiniLM-L6-v2
#   (BERT) grouped 1.8x packed (bench-train-sbert-cpu.json).
# - train, cuda: ModernBERT-base on an H200, batch 64, bf16: padded 13.1k real tokens/s, packed 10.5k, grouped
#   9.2k (benchmarks/results/h200-2026-11-27/train-paths.json): every path there is bound by kernel launches,
#   and a fixed shape launches least.
# - infer, cpu: length-sorted batches 2,980 real tokens/s against packed 2,304 (bench-infer-cpu.json).
# - infer, cuda: padded 46.2k, packed 39.9k, grouped 26.8k (h200-2026-11-27/infer.json), launch-bound as above.
AUTO = {
    ("train", "cpu"): {"modernbert": "packed", "bert": "grouped"},
    ("train", "cuda"): {"modernbert": "padded"},
    ("infer", "cpu"): {},
    ("infer", "cuda"): {"modernbert": "padded"},
}


def check_input_path(setting: str, what: str = "--input-path") -> str:
    """`setting` if it names an input path (or auto); one line otherwise."""
    if setting == "padded-128":  # `bench`'s earlier name for padding to max_length 128
        setting = "padded"
    if setting not in INPUT_PATHS:
        raise UserError(f"{what} must be one of {', '.join(INPUT_PATHS)}, got '{setting}'")
    return setting


def resolve_input_path(setting: str, model_type: str, use: str, device: str, what: str = "--input-path") -> str:
    """The path for `setting` (auto: the AUTO table above; otherwise checked against the model type)."""
    setting = check_input_path(setting, what)
    if setting == "auto":
        return AUTO.get((use, "cuda" if device == "cuda" else "cpu"), {}).get(model_type, "grouped")
    if setting == "packed" and model_type not in PACKED_MODEL_TYPES:
        raise UserError(f"input path 'packed' supports {', '.join(PACKED_MODEL_TYPES)} models, not '{model_type}'")
    return setting


def check_token_budget(token_budget: int | None, input_path: str, what: str = "train.packed_token_budget",
                       fix: str = "--input-path packed") -> None:
    """A token budget (one static packed shape) needs the packed path and whole packed rows; `fix`: the caller's
    option that gives the packed path."""
    if not token_budget:
        return
    if input_path != "packed":
        raise UserError(f"{what} needs the packed input path, not '{input_path}' (pass {fix} with --token-budget)")
    if token_budget < 0 or token_budget % PACKED_ROW_TOKENS:
        raise UserError(f"{what} must be a multiple of {PACKED_ROW_TOKENS} tokens, got {token_budget}")


def pad_batch(features: list[dict], pad_id: int, width: int | None = None, left: bool = False,
              sep_id: int | None = None) -> dict:
    """Pad `features` (dicts with input_ids) to the longest (or `width`): {"input_ids", "attention_mask"} as int64
    numpy arrays, and "token_type_ids" with `sep_id` (sep_for)."""
    width = width or max(len(f["input_ids"]) for f in features)
    out = {"input_ids": np.full((len(features), width), pad_id, dtype=np.int64),
           "attention_mask": np.zeros((len(features), width), dtype=np.int64)}
    for row, f in enumerate(features):
        n = min(len(f["input_ids"]), width)
        span = slice(width - n, width) if left else slice(0, n)
        out["input_ids"][row, span] = f["input_ids"][:n]
        out["attention_mask"][row, span] = 1
    if sep_id is not None:
        out["token_type_ids"] = type_ids(out["input_ids"], sep_id) * out["attention_mask"]  # int64
    return out


def pack_batch(seqs: list[list[int]], pad_id: int, labels=None, token_budget: int | None = None,
               row_tokens: int = PACKED_ROW_TOKENS, sep_id: int | None = None):
    """A PackedBatch of `seqs` in rows of `row_tokens` (a longer sentence gets a row of its own length);
    with `token_budget`, exactly that many tokens (one static shape; a batch that does not fit gets the next
    multiple, so no sentence is dropped)."""
    from .packing import budget_rows, pack, row_budget

    return pack(seqs, labels, row_tokens=row_budget(seqs, row_tokens), pad_id=pad_id,
                fixed_rows=budget_rows(token_budget, row_tokens), sep_id=sep_id)


def collate(path: str, seqs: list[list[int]], pad_id: int, max_length: int, labels=None,
            token_budget: int | None = None, tensors: bool = True, sep_id: int | None = None):
    """Model inputs for one batch of token id lists on `path`: a PackedBatch, or the padded fields (tensors for
    torch, numpy arrays with `tensors=False`) with "labels" when given."""
    if path == "packed":
        return pack_batch(seqs, pad_id, labels, token_budget, sep_id=sep_id)
    batch = pad_batch([{"input_ids": s} for s in seqs], pad_id, width=max_length if path == "padded" else None,
                      sep_id=sep_id)
    if labels is not None:
        batch["labels"] = label_array(labels)
    return to_tensors(batch) if tensors else batch


def to_tensors(batch: dict) -> dict:
    import torch

    return {name: torch.from_numpy(values) for name, values in batch.items()}


class Collator:
    """The Trainer's data collator for a path: tokenized examples -> model keywords (`packed` for packed)."""

    def __init__(self, path: str, pad_id: int, max_length: int, token_budget: int | None = None,
                 sep_id: int | None = None):
        check_token_budget(token_budget, path)
        self.path, self.pad_id, self.max_length, self.token_budget = path, pad_id, max_length, token_budget
        self.sep_id = sep_id

    def __call__(self, features: list[dict]) -> dict:
        labels = [f["labels"] for f in features] if "labels" in features[0] else None
        seqs = [list(f["input_ids"]) for f in features]
        batch = collate(self.path, seqs, self.pad_id, self.max_length, labels, self.token_budget, sep_id=self.sep_id)
        return {"packed": batch, "labels": batch.labels} if self.path == "packed" else batch


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
