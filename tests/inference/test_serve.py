"""The HTTP server, started for real on a loopback port with the tiny trained model."""

import asyncio
import subprocess
from contextlib import asynccontextmanager
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from modernbert_glue.inference_settings import InferenceSettings

from ..conftest import CLI, PROB_ATOL, near_tie
from .conftest import HANG_GUARD_S, http, start


class FakeEncodedClassifier:
    """What the server needs of a classifier (inference.backends.EncodedClassifier); subclasses fake the passes."""

    label_names = ["negative", "positive"]
    settings = InferenceSettings()

    def logits(self, texts):
        return self.logits_encoded(self.encode(texts))

    def probabilities(self, texts):
        return self.logits(texts)  # the batcher passes on whatever scores the model gives

    def probabilities_encoded(self, encoded):
        return self.logits_encoded(encoded)

    def scores(self, texts):
        return self.logits(texts)

    def scores_encoded(self, encoded):
        return self.logits_encoded(encoded)


class Gated(FakeEncodedClassifier):
    """Its first pass (or every one) waits for the test's `release`: "busy" is an event, not a duration."""

    def __init__(self, every: bool = False):
        self.batches, self.every = [], every
        self.running, self.release = threading.Event(), threading.Event()

    def encode(self, texts):
        return [[101, *range(len(t.split())), 102] for t in texts]

    def logits_encoded(self, encoded):
        import numpy as np

        self.batches.append(encoded)
        if self.every or len(self.batches) == 1:
            self.running.set()
            assert self.release.wait(HANG_GUARD_S), "a pass was never released"
        return np.tile([0.25, 0.75], (len(encoded), 1))


async def _queued_behind_a_pass(model: Gated, max_wait_ms: float, texts: list[str]):
    """A started batcher whose first pass (one text, "alone") holds the model while `texts` queue, one request
    each: (batcher, the first request's task, the queued ones' tasks)."""
    from modernbert_glue.inference.batcher import Metrics, MicroBatcher
    from modernbert_glue.inference.serve import ServeConfig

    batcher = MicroBatcher(model, ServeConfig(model="m", max_wait_ms=max_wait_ms), Metrics())
    batcher.start()
    first = asyncio.create_task(batcher.logits(["alone"]))
    await _until(model.running.is_set, "the first request's pass to start")
    queued = [asyncio.create_task(batcher.logits([text])) for text in texts]
    await _until(lambda: batcher.pending == 1 + len(texts), "the requests to queue while the first pass runs")
    return batcher, first, queued


async def _until(condition, what: str) -> None:
    """Poll `condition` on the event loop until it holds; the deadline only guards against a hang."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG_GUARD_S
    while not condition():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.005)


def test_classify_and_health(server):
    r = http.post(f"{server}/v1/classify", json={"texts": ["a fine film", "dull"]})
    assert r.status_code == 200
    body = r.json()
    assert len(body["predictions"]) == 2
    for p in body["predictions"]:
        assert p["label"] in ("negative", "positive") and set(p["scores"]) == {"negative", "positive"}
        assert p["score"] == pytest.approx(max(p["scores"].values()))
        assert p["scores"][p["label"]] == p["score"]  # the same row of the same pass: exact
        assert sum(p["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert http.get(f"{server}/healthz").json() == {"status": "ok"}
    assert http.get(f"{server}/readyz").status_code == 200
    assert http.get(f"{server}/docs").status_code == 200
    page = http.get(f"{server}/")
    assert page.status_code == 200 and "<button" in page.text and "http" not in page.text.split("<script>")[1]


@pytest.mark.parametrize("body, status, message", [
    ({"texts": ["x"] * 9}, 413, "9 texts in one request; the limit is 8"),
    ({"texts": ["x" * 201]}, 413, "text 0 has 201 characters; the limit is 200"),
    ({"texts": []}, 422, "at least 1 item"),
    ({"texts": "not a list"}, 422, "list"),
    ({"texts": [1, 2]}, 422, "string"),
    ({"text": ["a"]}, 422, "Field required"),
    ([], 422, ""),
    (None, 422, ""),
])
def test_bad_requests_get_4xx_with_a_message(server, body, status, message):
    r = http.post(f"{server}/v1/classify", json=body)
    assert r.status_code == status, r.text
    assert message in r.text


def test_malformed_json_and_huge_body(server):
    r = http.post(f"{server}/v1/classify", content=b'{"texts": [', headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = http.post(f"{server}/v1/classify", content=b"\xff\xfe garbage", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = http.post(f"{server}/v1/classify", content=b'{"texts": ["\xff\xfe"]}', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "the body cannot be read as JSON: it is not UTF-8"  # was 400
    r = http.post(f"{server}/predict", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json() == {"error": "the body cannot be read as JSON: it is nested too deeply",
                                                 "error_type": "Validation"}
    r = http.post(f"{server}/v1/classify", content=b"9" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "limit (4300 digits)" in r.json()["error"]
    r = http.post(f"{server}/v1/classify", content=b"x" * 1_100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit is 1000000" in r.json()["error"]
    assert r.json()["error_type"] == "validation"
    r = http.post(f"{server}/predict", content=b"x" * 1_100_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error_type"] == "Validation"  # TEI's route: TEI's spelling
    assert http.post(f"{server}/predict", json={"inputs": 5}).status_code == 422


def test_streamed_body_without_length_is_limited_too(server):
    def chunks():  # httpx sends a generator chunked, with no content-length header
        for _ in range(20):
            yield b"x" * 100_000

    r = http.post(f"{server}/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "request body is over 1000000 bytes; the limit is 1000000"
    small = http.post(f"{server}/v1/classify", content=iter([b'{"texts": ', b'["a fine film"]}']),
                       headers={"content-type": "application/json"})
    assert small.status_code == 200 and len(small.json()["predictions"]) == 1


def test_concurrent_requests_are_batched(server):
    def one(i):
        return http.post(f"{server}/v1/classify", json={"texts": [f"sentence number {i}"]}, timeout=30).status_code

    before = _batch_stats(server)
    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(48))) == {200}
    after = _batch_stats(server)
    texts, batches = after[0] - before[0], after[1] - before[1]
    assert texts == 48 and batches < 48, (texts, batches)  # several requests shared a forward pass


def _batch_stats(url):
    text = http.get(f"{url}/metrics").text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("mbg_batch_texts_")}
    return values["mbg_batch_texts_sum"], values["mbg_batch_texts_count"]


def _scores(ranked: list[dict]) -> dict[str, float]:
    return {d["label"]: d["score"] for d in ranked}


def test_tei_predict_route_and_real_client(server, monkeypatch):
    single = http.post(f"{server}/predict", json={"inputs": "a fine film"}).json()
    assert [d["label"] for d in single] in (["positive", "negative"], ["negative", "positive"])
    assert single[0]["score"] >= single[1]["score"] and sum(_scores(single).values()) == pytest.approx(1, abs=1e-5)
    tied = near_tie(list(_scores(single).values()))
    batch = http.post(f"{server}/predict", json={"inputs": [["a fine film"], ["dull"]]}).json()  # TEI's batch
    assert len(batch) == 2 and all(len(ranked) == 2 for ranked in batch)
    # Alone and inside a batch are different forward passes (other padding, other kernels' summation order):
    # equal within fp32 rounding, not bit for bit (Intel AMX vs AMD EPYC gave 0.8492293953895569 vs 0.8492292761802673).
    assert _scores(batch[0]) == pytest.approx(_scores(single), abs=PROB_ATOL)
    assert batch[0][0]["score"] >= batch[0][1]["score"]
    if not tied:
        assert [d["label"] for d in batch[0]] == [d["label"] for d in single]
    from huggingface_hub import InferenceClient, constants

    monkeypatch.setattr(constants, "is_offline_mode", lambda: False)  # the session is offline; this is loopback
    result = InferenceClient().text_classification("a fine film", model=f"{server}/predict")
    # TEI answers one input with a flat list; huggingface_hub's parser then returns its first (top) element.
    top = result[0] if isinstance(result, list) else result
    assert top.label == single[0]["label"] or (tied and top.label == single[1]["label"]), (top, single)
    assert top.score == pytest.approx(_scores(single)[top.label], abs=PROB_ATOL)


def test_full_queue_is_503_with_retry_after(tiny_run, monkeypatch):
    """A request while the queue (2 texts) holds another's 2: busy, try again; once that one is done, it fits."""
    from fastapi.testclient import TestClient

    from modernbert_glue.inference.serve import ServeConfig, create_app, load_served_model

    cfg = ServeConfig(model=str(tiny_run / "model"), max_queue=2, max_texts=2)
    model = load_served_model(cfg)
    running, release, real = threading.Event(), threading.Event(), model.logits_encoded

    def held(encoded):
        running.set()
        assert release.wait(HANG_GUARD_S), "the first pass was never released"
        return real(encoded)

    monkeypatch.setattr(model, "logits_encoded", held)
    with TestClient(create_app(cfg, model)) as client, ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/classify", json={"texts": ["a", "b"]})
        assert running.wait(HANG_GUARD_S)
        r = client.post("/v1/classify", json={"texts": ["c"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        release.set()
        assert first.result(HANG_GUARD_S).status_code == 200
        assert client.post("/v1/classify", json={"texts": ["c"]}).status_code == 200


def test_a_text_no_tokenizer_takes_has_no_place_in_the_queue(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--max-queue", "2", "--max-texts", "2")
    try:
        assert http.post(f"{url}/v1/classify", json={"texts": ["a", "b", "c"]}).status_code == 413
        assert http.post(f"{url}/v1/classify", json={"texts": ["a", "b"]}).status_code == 200
        # A lone surrogate (valid JSON, no tokenizer takes it) is a 422, more times than the queue holds, and
        # takes no place in the queue: a valid request still gets through afterwards.
        as_json = {"content-type": "application/json"}  # the escape as a client sends it (httpx's json= cannot)
        for _ in range(3):
            r = http.post(f"{url}/v1/classify", content=b'{"texts": ["\\ud800"]}', headers=as_json)
            assert r.status_code == 422 and r.json()["error_type"] == "validation" and "Unicode" in r.json()["error"]
            r = http.post(f"{url}/predict", content=b'{"inputs": "fine \\udfff"}', headers=as_json)
            assert r.status_code == 422
        assert http.post(f"{url}/v1/classify", json={"texts": ["a", "b"]}).status_code == 200
        # metrics are labelled by the app's routes; any other URL counts as "other" (no series per URL)
        r = http.get(f"{url}/no-such-page-123")
        assert r.status_code == 404 and r.json()["error_type"] == "not_found"  # the framework's errors: our body
        r = http.get(f"{url}/v1/classify")
        assert r.status_code == 405 and r.json()["error_type"] == "method_not_allowed" and r.headers["allow"]
        r = http.post(f"{url}/v1/classify", json={"texts": ["a fine film", " \t "]})
        assert r.status_code == 400 and r.json()["error_type"] == "empty" and "text 1" in r.json()["error"]
        metrics = http.get(f"{url}/metrics").text
        assert 'route="other",status="404"' in metrics and "no-such-page" not in metrics
        assert 'route="/v1/classify",status="422"' in metrics
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_batcher_counts_nothing_for_texts_it_cannot_tokenize():
    """A text the tokenizer refuses fails its request and leaves the queue's count as it was (a leaked count
    would fill the queue for good and hang shutdown, which waits for it to reach 0)."""
    from modernbert_glue.inference.batcher import Metrics, MicroBatcher
    from modernbert_glue.inference.serve import ServeConfig

    class Refusing(FakeEncodedClassifier):
        def encode(self, texts):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")

        def logits_encoded(self, encoded):
            raise AssertionError("never reached: encoding fails first")

    async def main():
        batcher = MicroBatcher(Refusing(), ServeConfig(model="m", max_queue=2, max_texts=2), Metrics())
        assert batcher.encoded  # else texts would queue unencoded (and, with no batcher running, wait for ever)
        for _ in range(3):
            with pytest.raises(TypeError):
                await asyncio.wait_for(batcher.logits(["a", "b"]), HANG_GUARD_S)
        return batcher.pending

    assert asyncio.run(main()) == 0


def test_graceful_shutdown_finishes_in_flight_requests(tiny_run):
    """SIGTERM while a request is in flight: the server answers it before exiting.

    No sleep decides what is in flight: the request announces `Expect: 100-continue`, and the server's
    "100 Continue" says the app has started on it (it is reading the body). Only then comes SIGTERM, and only
    after that the body, so the request cannot be finished before shutdown begins; it then sits in the batcher
    (--max-wait-ms 1500) while the server shuts down."""
    import http.client
    import json
    import signal
    import socket

    proc, url, port = start(tiny_run / "model", "--max-wait-ms", "1500")
    try:
        body = json.dumps({"texts": ["still answered"]}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                chunk = sock.recv(1)
                assert chunk, f"connection closed before 100 Continue: {interim!r}"
                interim += chunk
            assert interim.startswith(b"HTTP/1.1 100"), interim
            proc.send_signal(signal.SIGTERM)
            sock.sendall(body)
            response = http.client.HTTPResponse(sock)
            response.begin()
            status, answer = response.status, json.loads(response.read())
        # uvicorn raises the signal again after a clean shutdown: not an error (exit 0, no "error:" line)
        assert proc.wait(timeout=HANG_GUARD_S) == 0
        assert status == 200, answer
        assert answer["predictions"][0]["label"] in ("negative", "positive")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=HANG_GUARD_S)


def test_batcher_without_waiting_batches_what_queued_while_busy():
    """max_wait_ms=0: a lone request runs at once; requests that arrive while the model is busy share the next pass,
    and texts reach the model tokenized once (token ids, exact token budget)."""
    async def scenario():
        model = Gated()
        batcher, first, rest = await _queued_behind_a_pass(model, 0.0, ["a b 0", "a b 1", "a b 2", "a b 3", "a b 4"])
        model.release.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return model.batches, results

    batches, results = asyncio.run(scenario())
    assert [len(b) for b in batches] == [1, 5]
    assert batches[1][0] == [101, 0, 1, 2, 102]
    assert all(r.shape == (1, 2) for r in results)


def test_two_batches_in_flight_overlap():
    """max_inflight=2: a batch that forms while another runs starts at once instead of waiting for it.

    The model counts passes that overlap; the first pass is held until the test releases it, so with 2 in flight the
    second pass must start while the first is still running, and with 1 it must not."""
    import numpy as np

    from modernbert_glue.inference.batcher import Metrics, MicroBatcher
    from modernbert_glue.inference.serve import ServeConfig

    class CountingModel(FakeEncodedClassifier):
        def __init__(self):
            self.calls = self.running = self.most = 0
            self.lock = threading.Lock()
            self.release = threading.Event()

        def encode(self, texts):
            return [[101, 7, 102] for _ in texts]

        def logits_encoded(self, encoded):
            with self.lock:
                self.calls += 1
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                assert self.release.wait(HANG_GUARD_S), "the passes were never released"
            finally:
                with self.lock:
                    self.running -= 1
            return np.tile([0.5, 0.5], (len(encoded), 1))

    async def scenario(inflight):
        model = CountingModel()
        batcher = MicroBatcher(model, ServeConfig(model="m", backend="onnx", max_inflight=inflight), Metrics())
        batcher.start()
        first = asyncio.create_task(batcher.logits(["one"]))
        await _until(lambda: model.calls == 1, "the first batch to start")
        second = asyncio.create_task(batcher.logits(["two", "three"]))
        if inflight == 2:
            await _until(lambda: model.calls == 2, "the second batch to start while the first runs")
        else:  # the batcher has taken the second batch off the queue and waits for the busy slot
            await _until(lambda: batcher.pending == 3 and batcher.queue.empty(), "the second batch to form")
        calls_while_first_held = model.calls
        model.release.set()
        results = await asyncio.gather(first, second)
        await batcher.stop()
        assert [r.shape for r in results] == [(1, 2), (2, 2)]
        return model.most, calls_while_first_held, model.calls

    assert asyncio.run(scenario(2)) == (2, 2, 2)  # (most at once, passes started before release, passes)
    assert asyncio.run(scenario(1)) == (1, 1, 2)


def test_serve_options_are_checked():
    code = subprocess.run([*CLI, "serve", "--model", "x", "--max-inflight", "0"], capture_output=True, text=True)
    assert code.returncode == 2 and code.stderr.strip() == "error: --max-inflight must be at least 1, got 0"


def test_a_request_given_up_on_is_not_computed_and_the_others_in_its_batch_get_theirs():
    """A request cancelled while queued (the server's shutdown gave up on it, past its time limit) is dropped from
    its batch; one cancelled while the pass runs leaves the others' results to be set (set_result on it raised and
    left them waiting); stop() drops what is still queued instead of computing it."""
    async def scenario():
        model = Gated(every=True)
        batcher, first, queued = await _queued_behind_a_pass(model, 50.0, ["b0", "b1", "b2"])
        queued[0].cancel()
        model.release.set()
        results = await asyncio.wait_for(asyncio.gather(first, *queued[1:]), HANG_GUARD_S)
        model.release.clear()  # the next pass would wait: stop() must not start one
        late = asyncio.create_task(batcher.logits(["c"]))  # queued (or forming a batch), never run
        await asyncio.sleep(0.01)
        await asyncio.wait_for(batcher.stop(), HANG_GUARD_S)
        await asyncio.sleep(0)
        return model.batches, results, late.cancelled(), batcher.pending

    batches, results, late_cancelled, pending = asyncio.run(scenario())
    assert [len(b) for b in batches] == [1, 2] and all(r.shape == (1, 2) for r in results)  # not b0, not c
    assert late_cancelled and pending == 0


def test_a_queue_smaller_than_one_request_is_refused():
    from modernbert_glue.errors import UserError
    from modernbert_glue.inference.serve import ServeConfig

    with pytest.raises(UserError, match="--max-texts 32 is more than --max-queue 8 holds"):
        ServeConfig(model="m", max_queue=8)


def test_info_reports_the_dtype_the_passes_compute_in():
    from modernbert_glue.inference.backends import Classifier

    assert Classifier(model=None, tokenizer=None, bf16="on").dtype == "bfloat16"  # autocast over fp32 weights
    assert Classifier(model=None, tokenizer=None, bf16="off").dtype == "float32"


class Counting(Gated):
    """Gated, counting the texts it tokenized: the server tokenizes a request's texts as it queues them."""

    encoded = 0

    def encode(self, texts):
        self.encoded += len(texts)
        return super().encode(texts)


@asynccontextmanager
async def _in_process(model, **uvicorn_options):
    """(uvicorn.Server, port): the app over `model`, served by uvicorn on this event loop, stopped on leaving."""
    import socket

    import uvicorn

    from modernbert_glue.inference.serve import ServeConfig, create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(ServeConfig(model="m"), model)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **uvicorn_options))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await _until(lambda: server.started, "the server to start")
    try:
        yield server, sock.getsockname()[1]
    finally:
        server.should_exit = True
        model.release.set()
        await asyncio.wait_for(serving, HANG_GUARD_S)


def _classify_request(texts: list[str]) -> bytes:
    body = ('{"texts": [%s]}' % ", ".join(f'"{t}"' for t in texts)).encode()
    return (b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


async def _exchange(port: int, request: bytes) -> bytes:
    """The whole response to `request` (Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), HANG_GUARD_S)
    writer.close()
    return data


def test_a_client_that_disconnects_has_its_texts_dropped_uncomputed():
    """A client that gives up (its time-out, then perhaps a retry) while its texts queue behind a busy model: the
    server notices the closed connection, answers nothing to no one (499 in /metrics) and never computes them."""
    async def scenario():
        model = Counting()
        async with _in_process(model) as (_, port):
            first = asyncio.create_task(_exchange(port, _classify_request(["alone"])))
            await _until(model.running.is_set, "the first request's pass to start")
            _, gone = await asyncio.open_connection("127.0.0.1", port)
            gone.write(_classify_request(["two words"]))
            await _until(lambda: model.encoded == 2, "the second request to queue")
            gone.close()
            deadline = asyncio.get_running_loop().time() + HANG_GUARD_S
            metrics = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            while 'status="499"} 1.0' not in (await _exchange(port, metrics)).decode():
                assert asyncio.get_running_loop().time() < deadline, "the server never noticed the disconnect"
            model.release.set()
            replies = [await first, await _exchange(port, _classify_request(["three words here"]))]
        return model.batches, replies

    batches, replies = asyncio.run(scenario())
    assert all(r.startswith(b"HTTP/1.1 200") for r in replies), replies
    assert [[len(ids) for ids in b] for b in batches] == [[3], [5]]  # "alone", then "three words here": never "two words"


def test_requests_left_at_the_end_of_the_grace_time_get_a_json_503():
    """uvicorn cancels the requests still running when its graceful shutdown times out; each was a plain-text 500
    and a logged traceback. The one in the model's pass and the one queued behind it both get our 503."""
    async def scenario():
        model = Counting()
        async with _in_process(model, timeout_graceful_shutdown=0.2) as (server, port):
            requests = [asyncio.create_task(_exchange(port, _classify_request(["alone"])))]
            await _until(model.running.is_set, "the first request's pass to start")
            requests.append(asyncio.create_task(_exchange(port, _classify_request(["two words"]))))
            await _until(lambda: model.encoded == 2, "the second request to queue")
            server.should_exit = True
            return await asyncio.gather(*requests)

    for reply in asyncio.run(scenario()):
        assert reply.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in reply.lower(), reply
        assert reply.endswith(b'{"error":"the server is shutting down: send the request again","error_type":"unhealthy"}')
