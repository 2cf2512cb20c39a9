"""Property-based fuzzing of the running server from its own OpenAPI schema (schemathesis), bounded in examples:
no answer is a 5xx, and every 4xx carries a JSON error body."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from .conftest import start

EXAMPLES = 40  # per operation; the whole test stays within seconds on 2 cores


@pytest.fixture(scope="module")
def fuzzed_api(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--max-texts", "8", "--max-chars", "200", "--max-queue", "64")
    try:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


schema = schemathesis.pytest.from_fixture("fuzzed_api")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_5xx_and_every_4xx_is_a_json_error(case):
    response = case.call(timeout=60)
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and body.get("error") and body.get("error_type"), response.text
