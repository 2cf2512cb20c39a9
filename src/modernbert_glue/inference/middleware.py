"""Plain ASGI middlewares for the server: the body limit with request metrics, and the API key. Below FastAPI, they
answer with the same `{"error", "error_type"}` body as the routes."""

from __future__ import annotations

import hmac
import json
import time

from .batcher import Metrics


def json_error(status: int, message: str, kind: str, headers: list | None = None) -> tuple[dict, bytes]:
    """An ASGI response start and body for `{"error", "error_type"}` (for the middlewares, below FastAPI)."""
    body = json.dumps({"error": message, "error_type": kind}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         *(headers or [])]}
    return start, body


class RequireKey:
    """Plain ASGI middleware: `Authorization: Bearer KEY` on every route but the health checks."""

    OPEN = ("/health", "/healthz")

    def __init__(self, app, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in self.OPEN:
            scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").strip().partition(b" ")
            # the scheme in any case (RFC 7235); compare_digest on the key whatever the scheme: no timing hint
            if not hmac.compare_digest(given.strip(), self.key) or scheme.lower() != b"bearer":
                start, body = json_error(401, "missing or wrong API key: send `Authorization: Bearer KEY`",
                                         "unauthorized", [(b"www-authenticate", b"Bearer")])
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class BodyLimitAndMetrics:
    """Plain ASGI middleware: answers 413 for a body over `max_body_bytes` (declared or streamed) and counts
    every request's status and latency. Starlette's `@app.middleware("http")` would do the same through an
    extra task and stream copies per request, which cost serving throughput on a 2-core machine."""

    def __init__(self, app, max_body_bytes: int, metrics: Metrics):
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics
        self.routes: set[str] | None = None  # the app's route paths, read at the first request

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
                await self._too_large(counted_send, size, scope.get("path", ""))
            else:
                await self.app(scope, _replay(body, receive), counted_send)
        finally:
            route = self._route(scope)
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    def _route(self, scope) -> str:
        """The metrics label: the app's own route paths, any other path as "other" (a label per unknown URL
        would let any client grow the server's memory and its /metrics without bound)."""
        if self.routes is None:
            self.routes = {getattr(route, "path", None) for route in scope["app"].routes}
        return scope["path"] if scope["path"] in self.routes else "other"

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

    async def _too_large(self, send, size: str, path: str) -> None:
        from .tei import kind_on

        start, body = json_error(413, f"request body is {size} bytes; the limit is {self.max_body_bytes}",
                                 kind_on(path, "Validation"), [(b"connection", b"close")])
        await send(start)
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
