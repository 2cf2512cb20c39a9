"""The classifier contract every backend keeps, and the methods a tokenizing backend derives from its logits.

Backends: `Classifier` (torch, backends.py), `OnnxClassifier` (onnxruntime, onnx.py) and the baselines' models
(training/baselines.py, texts only). The server, `predict` and `evaluate` use only what `TextClassifier` and
`EncodedClassifier` promise.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..data import encode_texts
from ..evaluation.metrics import softmax
from ..models import InferenceSettings


@runtime_checkable
class TextClassifier(Protocol):
    """Scores per label for texts, in input order (rows: texts; columns: `label_names`): `logits` before the
    softmax (TEI's raw scores), `probabilities` after it."""

    label_names: list[str]

    def logits(self, texts: list[str]) -> np.ndarray: ...

    def probabilities(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class EncodedClassifier(TextClassifier, Protocol):
    """A classifier that tokenizes apart from running the model: the server tokenizes each request once, on
    arrival, so that its batches are bounded by exact token counts."""

    settings: InferenceSettings

    def encode(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids per text, truncated to `max_length` (default: the settings' max_length)."""
        ...

    def logits_encoded(self, encoded: list[list[int]]) -> np.ndarray: ...

    def probabilities_encoded(self, encoded: list[list[int]]) -> np.ndarray: ...


class Tokenized:
    """encode / logits / probabilities for a backend with `tokenizer`, `settings` and `logits_encoded`."""

    tokenizer: object
    settings: InferenceSettings

    def logits_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: list[str], max_length: int | None = None) -> list[list[int]]:
        return encode_texts(self.tokenizer, texts, max_length or self.settings.max_length)

    def logits(self, texts: list[str]) -> np.ndarray:
        return self.logits_encoded(self.encode(texts))

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return softmax(self.logits(texts))

    def probabilities_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        return softmax(self.logits_encoded(encoded))
