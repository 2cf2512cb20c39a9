"""The HTTP API's request and response bodies (pydantic), as the server checks and documents them (OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

Pair = Annotated[list[StrictStr], Field(min_length=2, max_length=2)]


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr | Pair] = Field(
        min_length=1, description="Sentences to classify, or [sentence, sentence2] pairs for a pair model.")


class Prediction(BaseModel):
    label: str | None = Field(None, description="The predicted label (absent for a regression model).")
    score: float = Field(description="The predicted label's probability, or a regression model's value.")
    scores: dict[str, float] | None = Field(None, description="Every label's probability (classifiers).")


class ClassifyResponse(BaseModel):
    """Documentation only: the routes build their JSON directly (FastAPI's encoder costs throughput)."""

    model: str
    predictions: list[Prediction]


class TEIScore(BaseModel):
    label: str
    score: float


class TEIRequest(BaseModel):
    """Text Embeddings Inference's /predict body: a text, a pair [text, text], or a batch [[text], [text, text]].
    `raw_scores` returns the logits instead of probabilities; without `truncate`, an input over the model's
    max length is refused (413); with it, the input loses its end or, `truncation_direction` "left", its start."""

    inputs: StrictStr | list[StrictStr] | list[list[StrictStr]]
    raw_scores: StrictBool = False  # a string ("yes", "0") is refused, as TEI does: pydantic would read it as a bool
    truncate: StrictBool | None = None
    truncation_direction: Literal["right", "Right", "left", "Left"] = "right"  # TEI's names: the end or the start
    parameters: dict | None = None  # sent by huggingface_hub's client; ignored, as TEI does


class ErrorBody(BaseModel):
    """Every error's body (documentation: the routes and middlewares write it directly)."""

    error: str
    error_type: str


def documented(**statuses: str) -> dict:
    """OpenAPI `responses` for a route's error statuses, given as s413="why", each with ErrorBody."""
    return {int(code[1:]): {"model": ErrorBody, "description": why} for code, why in statuses.items()}


REFUSED = documented(s413="Too many texts, too long a text, or too large a body",
                     s422="Malformed JSON, a body against the schema, or inputs of the wrong kind for the model",
                     s424="The model failed on the batch")
