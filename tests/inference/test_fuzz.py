"""Property-based fuzzing of the running server from its own OpenAPI schema (schemathesis's strategies driven by
hypothesis), bounded in examples: no answer is a 5xx, every 4xx carries a JSON error body, and every answer's status and body are
those the schema documents."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from .conftest import start

EXAMPLES = 40  # per operation; the whole test stays within seconds on 2 cores


def test_no_5xx_and_every_4xx_is_a_json_error(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--max-texts", "8", "--max-chars", "200", "--max-queue", "64")
    try:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"POST /v1/classify", "POST /predict"}
        seen = []
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def fuzz(case):
                response = case.call(base_url=url, timeout=60)
                seen.append(response.status_code)
                assert response.status_code < 500, (case.method, case.path, case.body, response.text)
                # each status documented in the schema, each body as it documents it
                case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                                         response_schema_conformance])
                if response.status_code >= 400:
                    body = response.json()
                    assert isinstance(body, dict) and body.get("error") and body.get("error_type"), response.text

            fuzz()
        assert any(400 <= s < 500 for s in seen) and 200 in seen  # it did reach both the routes and their checks
    finally:
        proc.terminate()
        proc.wait(timeout=30)
