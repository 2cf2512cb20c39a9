"""HTTP API (FastAPI + uvicorn) with dynamic micro-batching across concurrent requests.

Requests put their texts on one queue; a single batching task takes what is waiting (up to `max_batch_tokens`
tokens, waiting at most `max_wait_ms` for more) and runs the model in a worker thread, off the event loop.
Limits answer 413 (too many texts, too long a text, too large a body), a full queue 503 with Retry-After,
malformed JSON or schema 422. Routes: POST /v1/classify, POST /predict (Text Embeddings Inference's
classifier route and shapes), GET /healthz, /readyz, /metrics (Prometheus), /docs, and a demo page at /.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ..device import check_bf16
from ..errors import UserError
from .batcher import Metrics, MicroBatcher, Overloaded


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(min_length=1, description="Sentences to classify.")


class Prediction(BaseModel):
    label: str
    score: float = Field(description="The predicted label's probability.")
    scores: dict[str, float] = Field(description="Every label's probability.")


class ClassifyResponse(BaseModel):
    """Documentation only: the routes build their JSON directly (FastAPI's encoder costs throughput)."""

    model: str
    predictions: list[Prediction]


class TEIScore(BaseModel):
    label: str
    score: float


class TEIRequest(BaseModel):
    """Text Embeddings Inference's /predict body. `raw_scores` returns log-probabilities instead of probabilities."""

    inputs: StrictStr | list[StrictStr]
    raw_scores: bool = False
    truncate: bool | None = None
    parameters: dict | None = None  # sent by huggingface_hub's client; ignored, as TEI does


@dataclass
class ServeConfig:
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_tokens: int = 8192  # tokens per forward pass, summed over the batch's texts
    # How long a lone request waits for company. 0: no waiting; a batch takes whatever queued up while the
    # model was busy, which under load batches as well and keeps a single request's latency low.
    max_wait_ms: float = 0.0
    max_texts: int = 32  # texts per request (TEI's default)
    max_chars: int = 2000  # characters per text
    max_body_bytes: int = 1_000_000
    max_queue: int = 2048  # texts waiting; beyond it requests get 503
    # Batches in the model at once (None: 2 for onnx, 1 for torch). onnx: the next batch runs while the event
    # loop answers the last one's requests (with 1, the server used ~1.8 of 2 cores at 32 clients in a probe,
    # ~1.9 with 2). torch: two batches, each on every core, oversubscribed the cores (slower in a probe).
    max_inflight: int | None = None
    # Sentences per forward pass (None: 32 for torch, 12 for onnx). Smaller than for `predict`'s 64: a served
    # batch holds a few hundred sentences of random lengths, and smaller length-sorted slices of it pad less.
    batch_size: int | None = None
    input_path: str | None = None  # None: the model's saved setting (inputs.py)
    backend: str = "torch"  # onnx: `model` is an `export onnx` folder
    bf16: str = "auto"  # torch backend: bf16 autocast, auto|on|off (device.py)

    def __post_init__(self):
        positive = ("port", "max_batch_tokens", "max_texts", "max_chars", "max_body_bytes", "max_queue")
        for name in positive + ("max_inflight", "batch_size"):
            value = getattr(self, name)
            if (value is not None or name in positive) and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.max_wait_ms < 0:
            raise UserError(f"--max-wait-ms must be 0 or more, got {self.max_wait_ms}")
        check_bf16(self.bf16, "--bf16")


class BodyLimitAndMetrics:
    """Plain ASGI middleware: answers 413 for a body over `max_body_bytes` (declared or streamed) and counts
    every request's status and latency. Starlette's `@app.middleware("http")` would do the same through an
    extra task and stream copies per request, which cost serving throughput on a 2-core machine."""

    def __init__(self, app, max_body_bytes: int, metrics: Metrics):
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            body, size = await self._read_body(scope, receive)
            if body is None:
                await self._too_large(counted_send, size)
            else:
                await self.app(scope, _replay(body, receive), counted_send)
        finally:
            self.metrics.requests.labels(scope["path"], str(status[0])).inc()
            self.metrics.latency.labels(scope["path"]).observe(time.perf_counter() - started)

    async def _read_body(self, scope, receive) -> tuple[bytes | None, str]:
        """(the whole request body, its size); body None when over the limit (read no further than that)."""
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None, declared.decode()
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None, f"over {self.max_body_bytes}"
            more = message.get("more_body", False)
        return b"".join(chunks), str(size)

    async def _too_large(self, send, size: str) -> None:
        body = json.dumps({"error": f"request body is {size} bytes; the limit is {self.max_body_bytes}"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive):
    """An ASGI `receive` that hands the already-read body over once, then defers to the real one."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def create_app(cfg: ServeConfig, model=None):
    """The FastAPI app; `model` (anything with probabilities/label_names/tokenizer) is loaded from cfg if None."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from .backends import load_model

    metrics = Metrics()
    state: dict = {"ready": False}

    @asynccontextmanager
    async def lifespan(app):
        options = {"spin": False} if cfg.backend == "onnx" else {"input_path": cfg.input_path, "bf16": cfg.bf16}
        options["batch_size"] = cfg.batch_size or (12 if cfg.backend == "onnx" else 32)
        clf = model or load_model(cfg.model, cfg.backend, **options)
        state["model"] = clf
        state["batcher"] = MicroBatcher(clf, cfg, metrics)
        state["batcher"].start()
        state["ready"] = True
        yield
        state["ready"] = False
        await state["batcher"].stop()

    app = FastAPI(title="modernbert-glue", lifespan=lifespan,
                  description="SST-2 sentiment classifier with dynamic micro-batching.")

    def error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    app.add_middleware(BodyLimitAndMetrics, max_body_bytes=cfg.max_body_bytes, metrics=metrics)

    def check_texts(texts: list[str]):
        if len(texts) > cfg.max_texts:
            return error(413, f"{len(texts)} texts in one request; the limit is {cfg.max_texts}")
        for i, text in enumerate(texts):
            if len(text) > cfg.max_chars:
                return error(413, f"text {i} has {len(text)} characters; the limit is {cfg.max_chars}")
        return None

    async def classify_texts(texts: list[str]):
        try:
            return await state["batcher"].probabilities(texts), None
        except Overloaded:
            return None, error(503, "the server is busy: too many texts queued", {"Retry-After": "1"})

    @app.post("/v1/classify", responses={200: {"model": ClassifyResponse}})
    async def classify(body: ClassifyRequest):
        if (problem := check_texts(body.texts)) is not None:
            return problem
        probs, problem = await classify_texts(body.texts)
        if problem is not None:
            return problem
        names = state["model"].label_names
        return JSONResponse({"model": cfg.model, "predictions": [
            {"label": names[int(p.argmax())], "score": float(p.max()),
             "scores": {n: float(v) for n, v in zip(names, p)}} for p in probs]})

    @app.post("/predict", responses={200: {"model": list[TEIScore] | list[list[TEIScore]]}})
    async def predict_tei(body: TEIRequest):
        single = isinstance(body.inputs, str)
        texts = [body.inputs] if single else body.inputs
        if not texts:
            return error(422, "inputs must not be empty")
        if (problem := check_texts(texts)) is not None:
            return problem
        probs, problem = await classify_texts(texts)
        if problem is not None:
            return problem
        names = state["model"].label_names
        values = np.log(np.clip(probs, 1e-12, None)) if body.raw_scores else probs
        out = [sorted(({"label": n, "score": float(v)} for n, v in zip(names, row)), key=lambda d: -d["score"])
               for row in values]
        return JSONResponse(out[0] if single else out)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if not state["ready"]:
            return error(503, "model not loaded")
        return {"status": "ready", "model": cfg.model}

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def demo():
        return (resources.files("modernbert_glue") / "static" / "index.html").read_text(encoding="utf-8")

    return app


def serve(cfg: ServeConfig) -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests finish first (graceful shutdown)."""
    import uvicorn

    from ..outputs import check_model_finished

    check_model_finished(cfg.model)  # before the server starts: one line, not a failed start-up
    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level="info", timeout_graceful_shutdown=30)
