"""What padded (inputs.py) and packed (packing.py) batches both derive from token ids and labels: BERT's segment
ids, found from the separator, and label arrays for the loss (class ids, or float targets for regression).
numpy only, so that the ONNX backend's batches need no torch."""

from __future__ import annotations

import numpy as np


def sep_for(tokenizer) -> int | None:
    """The separator id whose position gives segment ids, for a model that takes token_type_ids; else None."""
    return tokenizer.sep_token_id if "token_type_ids" in tokenizer.model_input_names else None


def type_ids(ids, sep_id: int):
    """token_type_ids of id rows (last axis; numpy or torch): True after the first separator of each row."""
    is_sep = ids == sep_id
    return is_sep.cumsum(-1) > is_sep  # separators up to and including this token, minus this one, >= 1


def label_array(labels) -> np.ndarray:
    """Labels for a loss: int64 class ids, or float32 targets for regression."""
    values = np.asarray(labels)
    return values.astype(np.float32) if values.dtype.kind == "f" else values.astype(np.int64)
