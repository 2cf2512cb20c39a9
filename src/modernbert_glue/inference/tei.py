"""Text Embeddings Inference's classifier API as TEI defines it (its router's http/types.rs and server.rs): the
/predict input shapes, error bodies with `error_type` and their status codes, and /info — so that a client written
for TEI works unchanged against `serve`."""

from __future__ import annotations

import numpy as np

# TEI's ErrorType -> HTTP status (server.rs, `impl From<&ErrorType> for StatusCode`). TEI's routes send the names
# spelled so (serde, no renaming); our own routes send them in lower case.
ERROR_STATUS = {"Unhealthy": 503, "Backend": 424, "Overloaded": 429, "Tokenizer": 422, "Validation": 413,
                "Empty": 400}
ROUTES = ("/predict", "/health", "/info")


def kind_on(path: str, name: str) -> str:
    """An error kind as the route at `path` spells it: TEI's name on TEI's routes, lower case on ours."""
    return name if path in ROUTES else name.lower()


class TEIError(Exception):
    """An error TEI would answer with `{"error": message, "error_type": kind}` and the kind's status."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status or ERROR_STATUS[kind]


def parse_inputs(inputs) -> tuple[bool, list[str | tuple[str, str]]]:
    """TEI's PredictInput: "a" is one text, ["a", "b"] one pair, [["a"], ["b", "c"], ...] a batch of texts and
    pairs. Returns (single, sequences); a sequence is a text or a (text, text) pair."""
    if isinstance(inputs, str):
        return True, [inputs]
    if not isinstance(inputs, list):
        raise TEIError("Validation", "`inputs` must be a string, a pair of strings [string, string] or a batch "
                       "[[string], [string, string], ...]", status=422)
    if not inputs:
        raise TEIError("Empty", "`inputs` cannot be empty")
    if all(isinstance(item, str) for item in inputs):
        if len(inputs) > 2:
            raise TEIError("Validation", f"a sequence is one string or a pair of strings, not {len(inputs)} "
                           "strings (a batch is a list of lists: [[string], [string]])", status=422)
        return True, [inputs[0] if len(inputs) == 1 else (inputs[0], inputs[1])]
    sequences = []
    for i, item in enumerate(inputs):
        if not isinstance(item, list) or not 1 <= len(item) <= 2 or not all(isinstance(t, str) for t in item):
            raise TEIError("Validation", f"inputs[{i}]: each item of a batch is [string] or [string, string]",
                           status=422)
        sequences.append(item[0] if len(item) == 1 else (item[0], item[1]))
    return False, sequences


def scores(logits: np.ndarray, raw_scores: bool) -> np.ndarray:
    """TEI's Infer::predict: the logits with `raw_scores`, else a softmax over two or more outputs and a sigmoid
    over one (a regression model's value too: STS-B's 0-5 comes back as it is only with `raw_scores`)."""
    from ..evaluation.metrics import softmax

    if raw_scores:
        return logits
    return 1 / (1 + np.exp(-logits)) if logits.shape[1] == 1 else softmax(logits)


def cut(text: str, limit: int, side: str) -> str:
    """`text` within `limit` characters, cut on `side` (right: its end goes): with `truncate`, TEI cuts what it
    would otherwise refuse."""
    return text if len(text) <= limit else text[:limit] if side == "right" else text[-limit:]


def ranked(label_names: list[str], row) -> list[dict]:
    """One sequence's predictions, highest score first, as TEI orders them: a stable ascending sort reversed, so
    of equal scores the later label comes first."""
    pairs = sorted(({"label": n, "score": float(v)} for n, v in zip(label_names, row)), key=lambda d: d["score"])
    return pairs[::-1]


def info(model_id: str, label_names: list[str], *, dtype: str, max_input_length: int, max_batch_tokens: int,
         max_client_batch_size: int, max_concurrent_requests: int) -> dict:
    """TEI's /info body for a classifier (TEI calls a model with one output, a regression's, a reranker)."""
    from .. import __version__

    kind = "reranker" if len(label_names) == 1 else "classifier"
    return {
        "model_id": model_id, "model_sha": None, "model_dtype": dtype,
        "model_type": {kind: {"id2label": dict(enumerate(label_names)),
                                      "label2id": {name: i for i, name in enumerate(label_names)}}},
        "max_concurrent_requests": max_concurrent_requests, "max_input_length": max_input_length,
        "max_batch_tokens": max_batch_tokens, "max_batch_requests": None,
        "max_client_batch_size": max_client_batch_size, "auto_truncate": False, "tokenization_workers": 1,
        "version": __version__, "sha": None, "docker_label": None,
    }
