"""HTTP API (FastAPI + uvicorn) over the micro-batcher (batcher.py).

Routes: POST /v1/classify (ours: texts, or pairs for a pair model), GET /v1/model (task, text columns, labels),
POST /predict, GET /health and /info (Text Embeddings Inference's, as TEI defines them: tei.py), GET /healthz,
/readyz, /metrics (Prometheus), /docs, and a demo page at /. A regression model (STS-B) answers its value as
`score` on our route; /predict gives, as TEI does, its sigmoid unless `raw_scores`. Every error answers
`{"error": ..., "error_type": ...}` (on TEI's routes, spelled as TEI does: `Validation`). Limits answer 413 (too
many texts, too long a text, too large a body); a full queue 503 with Retry-After on /v1/classify, 429 on
/predict (as TEI); malformed JSON or schema 422. A client that disconnects while its texts queue has them dropped
uncomputed (499 in /metrics).
With an API key, every route but /health and /healthz needs `Authorization: Bearer KEY` (401 otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass
from importlib import resources

from fastapi import Request  # at module level: FastAPI resolves the routes' annotations in this module

from ..device import check_bf16
from ..errors import Terminated, UserError, first_line
from .backends import load_served_model
from .batcher import Metrics, MicroBatcher, Overloaded
from .middleware import BodyLimitAndMetrics, RequireKey
from .schemas import REFUSED, ClassifyRequest, ClassifyResponse, TEIRequest, TEIScore, documented

log = logging.getLogger(__name__)
API_KEY_ENV = "MODERNBERT_GLUE_API_KEY"


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
    api_key: str | None = None  # required as `Authorization: Bearer KEY` when set

    def __post_init__(self):
        positive = ("port", "max_batch_tokens", "max_texts", "max_chars", "max_body_bytes", "max_queue")
        for name in positive + ("max_inflight", "batch_size"):
            value = getattr(self, name)
            if (value is not None or name in positive) and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if not 0 <= self.max_wait_ms < math.inf:  # NaN fails both: a lone request would never be answered
            raise UserError(f"--max-wait-ms must be a number of 0 or more, got {self.max_wait_ms}")
        check_bf16(self.bf16, "--bf16")
        if self.port > 65535:
            raise UserError(f"--port must be at most 65535, got {self.port}")
        if self.api_key is not None and not self.api_key.strip():
            raise UserError("--api-key must not be empty")
        if self.api_key is not None and self.api_key != self.api_key.strip():  # HTTP drops it from the header
            raise UserError("--api-key starts or ends with whitespace, which no client can send in its header")
        if self.max_texts > self.max_queue:  # a full request could never be queued: "busy" for ever
            raise UserError(f"--max-texts {self.max_texts} is more than --max-queue {self.max_queue} holds; "
                            "raise --max-queue or lower --max-texts")


def create_app(cfg: ServeConfig, model=None):
    """The FastAPI app; `model` (a TextClassifier, backends.py) is loaded from cfg when None."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.exceptions import HTTPException as StarletteHTTPException

    import numpy as np

    from ..data import is_valid_unicode
    from ..evaluation.metrics import softmax
    from .classifier import EncodedClassifier, check_finite
    from .tei import TEIError, cut, info, kind_on, parse_inputs, ranked, scores

    metrics = Metrics()
    state: dict = {"ready": False}

    @asynccontextmanager
    async def lifespan(app):
        clf = model or load_served_model(cfg)
        state["model"] = clf
        state["batcher"] = MicroBatcher(clf, cfg, metrics)
        state["batcher"].start()
        state["ready"] = True
        yield
        state["ready"] = False
        await state["batcher"].stop()

    app = FastAPI(title="modernbert-glue", lifespan=lifespan,
                  description="Text classifier with dynamic micro-batching; /predict is Text Embeddings Inference's.")

    def error(status: int, message: str, kind: str, headers: dict | None = None):
        return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):  # the framework's own 404 and 405, in our body
        if exc.status_code == 400:  # FastAPI's "error parsing the body": what json.loads raised, beside its syntax
            return error(422, f"the body cannot be read as JSON: {_unreadable(exc.__cause__)}",
                         kind_on(request.url.path, "Validation"))
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "validation")
        return error(exc.status_code, str(exc.detail), kind, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors())
        return error(422, problems or "invalid request", kind_on(request.url.path, "Validation"))

    @app.exception_handler(Exception)
    async def failed(request, exc: Exception):  # a bug's 500 in our body too (the traceback goes to the log)
        return error(500, f"internal error ({type(exc).__name__}); the server's log has the details",
                     kind_on(request.url.path, "Backend"))

    if cfg.api_key:
        app.add_middleware(RequireKey, key=cfg.api_key)
    app.add_middleware(BodyLimitAndMetrics, max_body_bytes=cfg.max_body_bytes, metrics=metrics)  # outermost: 401s too

    def check_texts(texts: list, tei: bool = False) -> None:
        """Limits, and inputs of the model's kind: single texts, or pairs for a pair model (422 otherwise). Empty:
        on our route, any part empty or whitespace (as `predict` refuses such a line); on TEI's, as TEI, an input
        whose every part is ""."""
        if len(texts) > cfg.max_texts:
            raise TEIError("Validation", f"{len(texts)} texts in one request; the limit is {cfg.max_texts}")
        pair = len(state["model"].settings.text_columns) == 2
        for i, text in enumerate(texts):
            if isinstance(text, str) == pair:
                want = "pairs of texts [text, text]" if pair else "single texts"
                raise TEIError("Validation", f"input {i}: this model classifies {want}", status=422)
            parts = [text] if isinstance(text, str) else list(text)
            if all(p == "" for p in parts) if tei else any(not p.strip() for p in parts):
                raise TEIError("Empty", f"text {i} is empty" if tei else f"text {i} is empty or only whitespace")
            for part in parts:
                if not is_valid_unicode(part):
                    raise TEIError("Validation", f"text {i} is not valid Unicode (a lone surrogate)", status=422)
                if len(part) > cfg.max_chars:
                    raise TEIError("Validation", f"text {i} has {len(part)} characters; the limit is "
                                   f"{cfg.max_chars}")

    async def logits(request, texts: list[str], encoded=None):
        """The batcher's logits for `texts`; given up (ClientGone) when the client disconnects first, so that the
        texts of a client that timed out (and may be retrying) leave the queue uncomputed."""
        work = asyncio.ensure_future(state["batcher"].logits(texts, encoded))
        gone = asyncio.ensure_future(_disconnected(request.receive))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # uvicorn's shutdown, past its grace time: a JSON 503, not its plain 500
            asyncio.current_task().uncancel()
            raise TEIError("Unhealthy", "the server is shutting down: send the request again", status=503) from None
        finally:
            gone.cancel()
            work.cancel()  # no-op once done; else its future is cancelled and the batcher skips it
        if not work.done() or work.cancelled():
            raise TEIError("ClientGone", "the client disconnected before its answer", status=499)
        try:
            values = work.result()
        except Overloaded:
            raise TEIError("Overloaded", "the server is busy: too many texts queued") from None
        except Exception as exc:  # the model failed on the batch (memory, a broken export): TEI's 424
            log.exception("the model failed on a batch")
            raise TEIError("Backend", f"the model failed ({type(exc).__name__}); the server's log has the details") \
                from None
        try:  # NaN (damaged weights) is no JSON number: it would be a plain-text 500
            return check_finite(values, cfg.model)
        except UserError as exc:
            raise TEIError("Backend", str(exc)) from None

    def regression() -> bool:
        return state["model"].settings.regression

    @app.post("/v1/classify", responses={200: {"model": ClassifyResponse}, **REFUSED, **documented(
        s400="An empty or whitespace-only text", s503="The queue is full, or the server is stopping (Retry-After)")})
    async def classify(body: ClassifyRequest, request: Request):
        texts = [t if isinstance(t, str) else (t[0], t[1]) for t in body.texts]
        try:
            check_texts(texts)
            values = await logits(request, texts)
        except TEIError as exc:  # our own route: a full queue is 503, as before TEI's shapes were added
            status = 503 if exc.kind == "Overloaded" else exc.status
            return error(status, exc.message, kind_on("/v1/classify", exc.kind),
                         {"Retry-After": "1"} if status == 503 else None)
        if regression():
            return JSONResponse({"model": cfg.model, "predictions": [{"score": float(v[0])} for v in values]})
        names = state["model"].label_names
        return JSONResponse({"model": cfg.model, "predictions": [
            {"label": names[int(p.argmax())], "score": float(p.max()),
             "scores": {n: float(v) for n, v in zip(names, p)}} for p in softmax(values)]})

    @app.post("/predict", responses={200: {"model": list[TEIScore] | list[list[TEIScore]]}, **REFUSED, **documented(
        s400="An empty input", s429="The queue is full (Retry-After)", s503="The server is stopping")})
    async def predict_tei(body: TEIRequest, request: Request):
        try:
            single, sequences = parse_inputs(body.inputs)
            side = body.truncation_direction.lower()
            if body.truncate:  # a part over --max-chars is cut too, where it would be refused
                sequences = [cut(t, cfg.max_chars, side) if isinstance(t, str) else
                             tuple(cut(p, cfg.max_chars, side) for p in t) for t in sequences]
            check_texts(sequences, tei=True)
            values = await logits(request, sequences, tei_encode(sequences, body.truncate, side))
        except TEIError as exc:
            return error(exc.status, exc.message, exc.kind, {"Retry-After": "1"} if exc.status == 429 else None)
        out = [ranked(state["model"].label_names, row) for row in scores(np.asarray(values), body.raw_scores)]
        return JSONResponse(out[0] if single else out)

    def tei_encode(texts: list, truncate: bool | None, side: str):
        """Token ids, refusing (TEI: 413) an input over the max length unless `truncate` (then cut on `side`)."""
        clf = state["model"]
        if not isinstance(clf, EncodedClassifier):
            return None
        limit = clf.settings.max_length
        if truncate:
            return clf.encode(texts, side=side)
        encoded = clf.encode(texts, max_length=limit + 1)  # one token past the limit tells a long input apart
        for i, ids in enumerate(encoded):
            if len(ids) > limit:
                raise TEIError("Validation", f"input {i}: `inputs` must have less than {limit} tokens (pass "
                               "truncate: true to cut it)")
        return encoded

    @app.get("/health", response_class=Response, responses={
        200: {"description": "Healthy (an empty body, as TEI)"}, **documented(s503="The model is not loaded")})
    async def health():
        if not state["ready"]:
            return error(503, "unhealthy", "Unhealthy")
        return Response(status_code=200)

    @app.get("/info")
    async def model_info():
        clf = state["model"]
        settings = getattr(clf, "settings", None)
        return JSONResponse(info(cfg.model, clf.label_names, dtype=getattr(clf, "dtype", "float32"),
                                 max_input_length=settings.max_length if settings else 0,
                                 max_batch_tokens=cfg.max_batch_tokens, max_client_batch_size=cfg.max_texts,
                                 max_concurrent_requests=cfg.max_queue))

    @app.get("/v1/model")
    async def model_card():
        """What a client (the demo page) needs: the task, its text columns (two: pairs) and label names."""
        clf = state["model"]
        settings = clf.settings
        return {"model": cfg.model, "task": settings.task, "text_columns": list(settings.text_columns),
                "regression": settings.regression, "labels": [] if settings.regression else clf.label_names,
                "max_length": settings.max_length}

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", responses=documented(s503="The model is not loaded"))
    async def readyz():
        if not state["ready"]:
            return error(503, "model not loaded", "unhealthy")
        return {"status": "ready", "model": cfg.model}

    @app.get("/metrics", response_class=Response, responses={
        200: {"description": "Prometheus' text format", "content": {CONTENT_TYPE_LATEST: {}}}})
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def demo():
        return (resources.files("modernbert_glue") / "static" / "index.html").read_text(encoding="utf-8")

    if cfg.api_key:  # documented on the routes the key guards
        for route in app.routes:
            if getattr(route, "responses", None) is not None and route.path not in RequireKey.OPEN:
                route.responses.update(documented(s401="Missing or wrong API key"))

    return app


def _unreadable(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "it is not UTF-8"
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    return first_line(cause) if cause else "unknown reason"  # e.g. an integer of more digits than Python converts


async def _disconnected(receive) -> None:
    """Returns once the client has closed its connection. The route has read the whole body, so the server's next
    message on `receive` is the disconnect (uvicorn sends it at once once the response is complete, too)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def serve(cfg: ServeConfig) -> None:
    """Run the server until SIGINT/SIGTERM; in-flight requests finish first (graceful shutdown).

    The address is bound and the model loaded before uvicorn starts (it listens only after start-up anyway):
    uvicorn would report a port in use or a damaged model as a logged error or traceback and exit code 3."""
    import uvicorn

    from .backends import check_backend, check_torch_only

    check_torch_only(cfg.backend, input_path=cfg.input_path, bf16=None if cfg.bf16 == "auto" else cfg.bf16)
    check_backend(cfg.model, cfg.backend)  # before anything: one line, not a failed start-up
    if cfg.api_key is None and os.environ.get(API_KEY_ENV) == "":  # click reads an empty variable as unset
        raise UserError(f"${API_KEY_ENV} is set but empty: give the key, or unset it to serve without one")
    if not cfg.api_key and not _local(cfg.host):
        log.warning("serving on %s without an API key: anyone who can reach it can use it (--api-key KEY or "
                    "$%s)", cfg.host, API_KEY_ENV)
    from .sockets import listen_sockets

    sockets = listen_sockets(cfg.host, cfg.port)
    try:
        app = create_app(cfg, load_served_model(cfg))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="info", timeout_graceful_shutdown=30)
    # uvicorn announces the address only for sockets it binds itself
    log.info("serving %s on http://%s:%d (Ctrl-C to stop)", cfg.model,
             f"[{cfg.host}]" if ":" in cfg.host else cfg.host, cfg.port)
    try:
        uvicorn.Server(config).run(sockets=sockets)
    except Terminated:  # uvicorn shut down gracefully, then raised the SIGTERM it had caught again: not an error
        log.info("shut down (SIGTERM)")


def _local(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
