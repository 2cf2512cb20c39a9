"""/predict, /health and /info as Text Embeddings Inference defines them (shapes, error bodies, status codes);
the API key."""

import pytest

from modernbert_glue.inference.tei import TEIError, parse_inputs

from ..conftest import PROB_ATOL, free_port, run_cli
from .conftest import http, start


@pytest.mark.parametrize("inputs, single, sequences", [
    ("a", True, ["a"]),
    (["a"], True, ["a"]),
    (["a", "b"], True, [("a", "b")]),  # a list of two strings is ONE pair in TEI, not a batch
    ([["a"], ["b"]], False, ["a", "b"]),
    ([["a", "b"], ["c"]], False, [("a", "b"), "c"]),
])
def test_tei_input_shapes(inputs, single, sequences):
    assert parse_inputs(inputs) == (single, sequences)


def test_labels_are_ranked_as_tei_ranks_them():
    from modernbert_glue.inference.tei import ranked

    assert [d["label"] for d in ranked(["a", "b", "c"], [0.2, 0.5, 0.3])] == ["b", "c", "a"]
    assert [d["label"] for d in ranked(["a", "b"], [0.5, 0.5])] == ["b", "a"]  # a tie: TEI's reversed stable sort


@pytest.mark.parametrize("inputs, status, kind", [
    ([], 400, "Empty"),
    (["a", "b", "c"], 422, "Validation"),
    ([["a", "b", "c"]], 422, "Validation"),
    ([["a"], "b"], 422, "Validation"),
    (5, 422, "Validation"),
])
def test_tei_input_errors(inputs, status, kind):
    with pytest.raises(TEIError) as caught:
        parse_inputs(inputs)
    assert (caught.value.status, caught.value.kind) == (status, kind)


def test_raw_scores_are_logits_and_batches_keep_order(server):
    texts = ["a fine film", "dull and slow", "x"]
    probs = http.post(f"{server}/predict", json={"inputs": [[t] for t in texts]}).json()
    raw = http.post(f"{server}/predict", json={"inputs": [[t] for t in texts], "raw_scores": True}).json()
    classify = http.post(f"{server}/v1/classify", json={"texts": texts}).json()["predictions"]
    import numpy as np

    for p, r, c in zip(probs, raw, classify):
        logits = {d["label"]: d["score"] for d in r}
        z = np.array(list(logits.values()))
        softmax = dict(zip(logits, np.exp(z - z.max()) / np.exp(z - z.max()).sum()))
        assert {d["label"]: d["score"] for d in p} == pytest.approx(softmax, abs=PROB_ATOL)
        assert {d["label"]: d["score"] for d in p} == pytest.approx(c["scores"], abs=PROB_ATOL)
        assert abs(sum(logits.values()) - 1) > 1e-3 or any(v < 0 for v in logits.values())  # not probabilities


@pytest.mark.parametrize("body, status, kind", [
    ({"inputs": []}, 400, "Empty"),
    ({"inputs": ""}, 400, "Empty"),
    ({"inputs": [["a fine film"], [""]]}, 400, "Empty"),  # whitespace only is classified, as TEI does (below)
    ({"inputs": ["a fine film", "dull"]}, 422, "Validation"),  # a pair: this model takes single texts
    ({"inputs": [["x"]] * 9}, 413, "Validation"),  # the server's --max-texts 8
    ({"inputs": "y" * 201}, 413, "Validation"),  # --max-chars 200 (with truncate: cut, below)
    ({"inputs": 5}, 422, "Validation"),
    ({"input": "a"}, 422, "Validation"),
    ({"inputs": "a", "raw_scores": "yes"}, 422, "Validation"),  # was read as true: TEI takes JSON booleans only
    ({"inputs": "a", "truncate": "0"}, 422, "Validation"),
    ({"inputs": "a", "truncate": True, "truncation_direction": "middle"}, 422, "Validation"),
])
def test_tei_errors_have_teis_body(server, body, status, kind):
    r = http.post(f"{server}/predict", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error_type"] == kind and r.json()["error"]


def test_too_long_input_is_413_unless_truncate(server, tiny_run):
    from modernbert_glue.models import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_run / "model"))
    over = "\U0001f600" * 100  # 100 characters (within --max-chars 200), each several byte-level tokens
    fits = "a " * 60
    assert len(tokenizer(over)["input_ids"]) > 128 >= len(tokenizer(fits)["input_ids"])
    assert http.get(f"{server}/info").json()["max_input_length"] == 128
    assert http.post(f"{server}/predict", json={"inputs": fits}).status_code == 200
    r = http.post(f"{server}/predict", json={"inputs": over})
    assert r.status_code == 413 and r.json()["error_type"] == "Validation"
    assert "must have less than 128 tokens" in r.json()["error"]
    assert http.post(f"{server}/predict", json={"inputs": over, "truncate": True}).status_code == 200


def test_truncation_direction_cuts_the_end_or_the_start(server, tiny_run):
    """TEI's truncation_direction: "right" (the default) keeps the start of a long input, "left" its end."""
    import numpy as np

    from modernbert_glue.inference.backends import load_model

    clf = load_model(str(tiny_run / "model"))
    text = "\U0001f600" * 60 + "\U0001f480" * 60  # within --max-chars 200, over 128 tokens; the halves unlike
    assert len(clf.encode([text], max_length=1000)[0]) > 200
    got = {}
    for direction in (None, "right", "Right", "left", "Left"):
        body = {"inputs": text, "truncate": True, "raw_scores": True,
                **({"truncation_direction": direction} if direction else {})}
        r = http.post(f"{server}/predict", json=body)
        assert r.status_code == 200, r.text
        got[direction] = {d["label"]: d["score"] for d in r.json()}
    for side, directions in (("right", (None, "right", "Right")), ("left", ("left", "Left"))):
        ids = clf.encode([text], side=side)
        assert len(ids[0]) == 128
        expected = dict(zip(clf.label_names, clf.logits_encoded(ids)[0]))
        for direction in directions:
            assert got[direction] == pytest.approx(expected, abs=PROB_ATOL), direction
    assert not np.allclose(list(got["left"].values()), list(got["right"].values()), atol=1e-4)


def test_health_and_info(server):
    r = http.get(f"{server}/health")
    assert r.status_code == 200 and r.content == b""
    info = http.get(f"{server}/info").json()
    assert info["model_type"]["classifier"]["id2label"] == {"0": "negative", "1": "positive"}
    assert info["model_type"]["classifier"]["label2id"] == {"negative": 0, "positive": 1}
    assert info["max_client_batch_size"] == 8 and info["max_batch_tokens"] == 8192 and info["model_dtype"] == "float32"


def test_api_key_guards_every_route_but_health(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--api-key", "s3cret")
    try:
        assert http.get(f"{url}/health").status_code == 200 and http.get(f"{url}/healthz").status_code == 200
        for method, route, body in (("post", "/predict", {"inputs": "a"}), ("post", "/v1/classify", {"texts": ["a"]}),
                                    ("get", "/info", None), ("get", "/metrics", None), ("get", "/docs", None),
                                    ("get", "/openapi.json", None), ("get", "/", None)):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                r = http.request(method, f"{url}{route}", json=body, headers=headers)
                assert r.status_code == 401, (route, headers)
                assert r.json()["error_type"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
            ok = http.request(method, f"{url}{route}", json=body, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200, (route, ok.text)
        lower = http.get(f"{url}/info", headers={"Authorization": "bearer s3cret"})  # the scheme in any case
        assert lower.status_code == 200, lower.text
        metrics = http.get(f"{url}/metrics", headers={"Authorization": "Bearer s3cret"}).text
        assert 'status="401"' in metrics  # refused requests are counted too
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_binding_beyond_localhost_without_a_key_warns(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--host", "0.0.0.0")  # reached over loopback only
    try:
        assert http.get(f"{url}/health").status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    warnings = [line for line in output.splitlines() if "without an API key" in line]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_binding_to_loopback_does_not_warn(tiny_run, host, monkeypatch, caplog):
    """serve() up to uvicorn's loop, in this process: the real checks, bind and model load, then no server."""
    import uvicorn

    from modernbert_glue.inference.serve import ServeConfig, serve

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: [s.close() for s in sockets])
    with caplog.at_level("INFO", logger="modernbert_glue"):
        serve(ServeConfig(model=str(tiny_run / "model"), host=host, port=free_port()))
    assert "serving" in caplog.text and "without an API key" not in caplog.text


def test_truncate_cuts_a_text_over_max_chars_on_its_side(server):
    """--max-chars refuses a longer text (413), but with `truncate` TEI cuts what it would refuse."""
    text = "a dull film " * 10 + "a fine film " * 10  # 240 characters; --max-chars 200
    for side, kept in (("right", text[:200]), ("left", text[-200:])):
        body = {"inputs": text, "truncate": True, "truncation_direction": side, "raw_scores": True}
        r = http.post(f"{server}/predict", json=body)
        assert r.status_code == 200, r.text
        alone = http.post(f"{server}/predict", json={"inputs": kept, "raw_scores": True}).json()
        assert {d["label"]: d["score"] for d in r.json()} == pytest.approx(
            {d["label"]: d["score"] for d in alone}, abs=PROB_ATOL)


def test_a_model_that_fails_is_teis_424_and_a_bug_a_json_500(tiny_run, monkeypatch):
    """The model raising on a batch (out of memory, say) answered Starlette's plain-text 500."""
    from fastapi.testclient import TestClient

    from modernbert_glue.inference.serve import ServeConfig, create_app, load_served_model

    cfg = ServeConfig(model=str(tiny_run / "model"))
    model = load_served_model(cfg)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    for name in ("logits", "logits_encoded"):
        monkeypatch.setattr(model, name, out_of_memory, raising=False)
    with TestClient(create_app(cfg, model), raise_server_exceptions=False) as client:
        r = client.post("/predict", json={"inputs": "a fine film"})
        assert r.status_code == 424 and r.json() == {
            "error": "the model failed (RuntimeError); the server's log has the details", "error_type": "Backend"}
        r = client.post("/v1/classify", json={"texts": ["a fine film"]})
        assert r.status_code == 424 and r.json()["error_type"] == "backend"
        info = client.get("/info").json()
        assert isinstance(info["version"], str) and "classifier" in info["model_type"]
        monkeypatch.undo()  # the model works again; a bug past it
        monkeypatch.setattr(model.settings.__class__, "regression", property(lambda self: 1 / 0))
        r = client.post("/v1/classify", json={"texts": ["a fine film"]})
        assert r.status_code == 500 and r.json()["error_type"] == "backend" and "ZeroDivision" in r.json()["error"]


def test_whitespace_is_classified_as_tei_does_and_our_route_refuses_it(server):
    """TEI refuses only an empty input; our own route (and `predict`) refuse whitespace too: nothing to classify."""
    r = http.post(f"{server}/predict", json={"inputs": [["   "], ["a fine film"]]})
    assert r.status_code == 200 and len(r.json()) == 2, r.text
    r = http.post(f"{server}/v1/classify", json={"texts": ["a fine film", "   "]})
    assert r.status_code == 400 and r.json()["error_type"] == "empty" and "text 1" in r.json()["error"]


def test_an_empty_api_key_variable_is_refused_not_read_as_no_key(tiny_run, monkeypatch):
    """click reads an empty variable as unset: a secret that failed to load would have served without a key."""
    monkeypatch.setenv("MODERNBERT_GLUE_API_KEY", "")
    code, _, stderr = run_cli("serve", "--model", tiny_run / "model", "--port", "1")
    assert code == 2 and stderr.strip().splitlines()[-1] == (
        "error: $MODERNBERT_GLUE_API_KEY is set but empty: give the key, or unset it to serve without one")


def test_an_api_key_with_surrounding_whitespace_is_refused():
    """HTTP strips a header value's surrounding whitespace: `KEY ` (a secret file's newline, say) could never match."""
    from modernbert_glue.errors import UserError
    from modernbert_glue.inference.serve import ServeConfig

    for key in ("s3cret\n", " s3cret"):
        with pytest.raises(UserError, match="^--api-key starts or ends with whitespace"):
            ServeConfig(model="m", api_key=key)
