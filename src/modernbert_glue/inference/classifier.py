"""The classifier contract every backend keeps, and the methods a tokenizing backend derives from its logits.

Backends: `Classifier` (torch, backends.py), `OnnxClassifier` (onnxruntime, onnx.py) and the baselines' models
(training/baselines.py, texts only). The server, `predict` and `evaluate` use only what `TextClassifier` and
`EncodedClassifier` promise.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..data import encode_texts
from ..errors import UserError
from ..evaluation.metrics import softmax
from ..inference_settings import InferenceSettings

Text = str | tuple[str, str]  # a sentence, or a (sentence, sentence2) pair for a pair task


@runtime_checkable
class TextClassifier(Protocol):
    """Scores per label for texts or pairs, in input order (rows: texts; columns: `label_names`): `logits` before
    the softmax (TEI's raw scores), `probabilities` after it; `scores` is what a prediction reports: the
    probabilities, or a regression model's predicted value ([n, 1], its logits)."""

    label_names: list[str]
    settings: InferenceSettings

    def logits(self, texts: list[Text]) -> np.ndarray: ...

    def probabilities(self, texts: list[Text]) -> np.ndarray: ...

    def scores(self, texts: list[Text]) -> np.ndarray: ...


@runtime_checkable
class EncodedClassifier(TextClassifier, Protocol):
    """A classifier that tokenizes apart from running the model: the server tokenizes each request once, on
    arrival, so that its batches are bounded by exact token counts."""

    def encode(self, texts: list[Text], max_length: int | None = None, side: str = "right") -> list[list[int]]:
        """Token ids per text or pair, truncated to `max_length` as given (default: the settings' max_length),
        cutting the end (`side` "left": the start)."""
        ...

    def logits_encoded(self, encoded: list[list[int]]) -> np.ndarray: ...

    def probabilities_encoded(self, encoded: list[list[int]]) -> np.ndarray: ...

    def scores_encoded(self, encoded: list[list[int]]) -> np.ndarray: ...


def to_scores(logits: np.ndarray, regression: bool) -> np.ndarray:
    """What a prediction reports from logits: probabilities, or the value itself for regression."""
    return logits if regression else softmax(logits)


def check_finite(values: np.ndarray, model: str) -> np.ndarray:
    """`values` (logits or scores, a row per input) as they are when each is a number. A model with damaged
    weights (NaN) gives NaN for every input: printed, that is `"score": NaN` (not JSON) or metrics of nothing;
    refused here in one line naming `model`."""
    array = np.asarray(values, dtype=float)
    bad = ~np.isfinite(array).reshape(len(array), -1).all(axis=1) if array.size else np.zeros(0, dtype=bool)
    if bad.any():
        raise UserError(f"{model}: the model gave non-finite scores (NaN or infinity) for {int(bad.sum())} of "
                        f"{len(values)} inputs; are its weights damaged?")
    return values


class Tokenized:
    """encode / logits / probabilities for a backend with `tokenizer`, `settings` and `logits_encoded`."""

    tokenizer: object
    settings: InferenceSettings

    def logits_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        raise NotImplementedError

    def encode(self, texts: list[Text], max_length: int | None = None, side: str = "right") -> list[list[int]]:
        if max_length is None:  # the run's limit (its saved tokenizer carries it too)
            return encode_texts(self.tokenizer, texts, self.settings.max_length, side=side)
        return encode_texts(self.tokenizer, texts, max_length, exact=True, side=side)

    def logits(self, texts: list[Text]) -> np.ndarray:
        return self.logits_encoded(self.encode(texts))

    def probabilities(self, texts: list[Text]) -> np.ndarray:
        return softmax(self.logits(texts))

    def scores(self, texts: list[Text]) -> np.ndarray:
        return to_scores(self.logits(texts), self.settings.regression)

    def probabilities_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        return softmax(self.logits_encoded(encoded))

    def scores_encoded(self, encoded: list[list[int]]) -> np.ndarray:
        return to_scores(self.logits_encoded(encoded), self.settings.regression)
