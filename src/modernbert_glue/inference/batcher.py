"""Dynamic micro-batching for the server: texts from concurrent requests join batches bounded by tokens and
waiting time; batches run in worker threads, off the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .classifier import EncodedClassifier


class Overloaded(Exception):
    pass


class MicroBatcher:
    """Collects texts from concurrent requests into batches bounded by tokens and waiting time.

    Models with `encode`/`logits_encoded` (Classifier, OnnxClassifier) are tokenized once, on arrival,
    so the token budget is exact; others (baselines) take texts, counted as words + 2.
    """

    def __init__(self, model, cfg, metrics):  # cfg: serve.ServeConfig (its limits)
        self.model = model
        self.encoded = isinstance(model, EncodedClassifier)
        self.cfg = cfg
        self.metrics = metrics
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pending = 0
        inflight = cfg.max_inflight or (2 if cfg.backend == "onnx" else 1)
        self.executor = ThreadPoolExecutor(max_workers=inflight, thread_name_prefix="inference")
        self.slots = asyncio.Semaphore(inflight)
        self.running: set[asyncio.Task] = set()
        self.forming: list = []  # items taken from the queue for the next batch, not passed to it yet
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop, after the server's graceful shutdown: what is still queued belongs to requests it gave up on
        (past its time limit) and is dropped; the passes running finish."""
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        left = self.forming + [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        for inputs, _, future in left:
            self.pending -= len(inputs)
            future.cancel()
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        self.executor.shutdown(wait=True, cancel_futures=True)

    async def logits(self, texts: list[str], encoded: list[list[int]] | None = None) -> np.ndarray:
        """The model's logits for `texts` (tokenized here unless `encoded` gives their token ids)."""
        if self.pending + len(texts) > self.cfg.max_queue:
            raise Overloaded()
        inputs = (encoded or self.model.encode(texts)) if self.encoded else texts  # may raise: before counting
        future = asyncio.get_running_loop().create_future()
        self.pending += len(texts)
        tokens = sum(len(ids) for ids in inputs) if self.encoded else sum(len(" ".join([t] if isinstance(t, str) else t).split()) + 2 for t in texts)
        await self.queue.put((inputs, tokens, future))
        return await future

    async def _next(self, deadline: float):
        """The next queued item: what is already waiting first, else wait until `deadline` (None: nothing)."""
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            timeout = deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                return None
            try:
                return await asyncio.wait_for(self.queue.get(), timeout)
            except asyncio.TimeoutError:
                return None

    async def _run(self) -> None:
        """Form a batch whenever one of the `max_inflight` slots is free; each batch runs as its own task."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.forming:
                self.forming = [await self.queue.get()]
            await self.slots.acquire()  # what queues meanwhile joins this batch
            tokens, carry = self.forming[0][1], None
            deadline = loop.time() + self.cfg.max_wait_ms / 1000
            while tokens < self.cfg.max_batch_tokens:
                item = await self._next(deadline)
                if item is None:
                    break
                if tokens + item[1] > self.cfg.max_batch_tokens:
                    carry = item  # starts the next batch
                    break
                self.forming.append(item)
                tokens += item[1]
            items, self.forming = self.forming, [carry] if carry else []
            task = loop.create_task(self._execute(items))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _execute(self, items: list) -> None:
        queued = sum(len(item[0]) for item in items)
        items = [item for item in items if not item[2].done()]  # a request given up on (cancelled) is not computed
        texts = [t for item in items for t in item[0]]
        run = self.model.logits_encoded if self.encoded else self.model.logits
        try:
            if texts:
                self.metrics.batch_texts.observe(len(texts))
                probs = await asyncio.get_running_loop().run_in_executor(self.executor, run, texts)
        except Exception as exc:  # a model failure fails these requests, not the server
            for item in items:
                if not item[2].done():
                    item[2].set_exception(exc)
        else:
            start = 0
            for item in items:
                if not item[2].done():  # cancelled while the pass ran: the others still get theirs
                    item[2].set_result(probs[start : start + len(item[0])])
                start += len(item[0])
        finally:
            self.pending -= queued
            self.slots.release()


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("mbg_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("mbg_request_latency_seconds", "Request latency", ["route"], registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))
        self.batch_texts = Histogram("mbg_batch_texts", "Texts per batch the server formed (run in passes of "
                                     "--batch-size)", registry=self.registry,
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))


