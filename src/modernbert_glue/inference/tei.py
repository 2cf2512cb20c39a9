"""Text Embeddings Inference's classifier API as TEI defines it (its router's http/types.rs and server.rs): the
/predict input shapes, error bodies with `error_type` and their status codes, and /info — so that a client written
for TEI works unchanged against `serve`."""

from __future__ import annotations

# TEI's ErrorType -> HTTP status (server.rs, `impl From<&ErrorType> for StatusCode`).
ERROR_STATUS = {"unhealthy": 503, "backend": 424, "overloaded": 429, "tokenizer": 422, "validation": 413,
                "empty": 400}


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
        raise TEIError("validation", "`inputs` must be a string, a pair of strings [string, string] or a batch "
                       "[[string], [string, string], ...]", status=422)
    if not inputs:
        raise TEIError("empty", "`inputs` cannot be empty")
    if all(isinstance(item, str) for item in inputs):
        if len(inputs) > 2:
            raise TEIError("validation", f"a sequence is one string or a pair of strings, not {len(inputs)} "
                           "strings (a batch is a list of lists: [[string], [string]])", status=422)
        return True, [inputs[0] if len(inputs) == 1 else (inputs[0], inputs[1])]
    sequences = []
    for i, item in enumerate(inputs):
        if not isinstance(item, list) or not 1 <= len(item) <= 2 or not all(isinstance(t, str) for t in item):
            raise TEIError("validation", f"inputs[{i}]: each item of a batch is [string] or [string, string]",
                           status=422)
        sequences.append(item[0] if len(item) == 1 else (item[0], item[1]))
    return False, sequences


def ranked(label_names: list[str], row) -> list[dict]:
    """One sequence's predictions, highest score first (TEI sorts them so)."""
    return sorted(({"label": n, "score": float(v)} for n, v in zip(label_names, row)), key=lambda d: -d["score"])


def info(model_id: str, label_names: list[str], *, dtype: str, max_input_length: int, max_batch_tokens: int,
         max_client_batch_size: int, max_concurrent_requests: int) -> dict:
    """TEI's /info body for a classifier."""
    from importlib import metadata

    try:
        version = metadata.version("modernbert-glue")
    except metadata.PackageNotFoundError:
        version = None
    return {
        "model_id": model_id, "model_sha": None, "model_dtype": dtype,
        "model_type": {"classifier": {"id2label": dict(enumerate(label_names)),
                                      "label2id": {name: i for i, name in enumerate(label_names)}}},
        "max_concurrent_requests": max_concurrent_requests, "max_input_length": max_input_length,
        "max_batch_tokens": max_batch_tokens, "max_batch_requests": None,
        "max_client_batch_size": max_client_batch_size, "auto_truncate": False, "tokenization_workers": 1,
        "version": version, "sha": None, "docker_label": None,
    }
