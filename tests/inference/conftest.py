"""A real server on a loopback port with the tiny trained model, shared by the HTTP tests of this folder."""

import httpx
import pytest

from modernbert_glue.inference.launch import start_server

HANG_GUARD_S = 60  # only guards against a hang: no test waits for time to pass
# The tests' HTTP client: httpx's own 5 s time-out could pass on a loaded machine; this one guards only a hang.
http = httpx.Client(timeout=HANG_GUARD_S)


def start(model_dir, *extra):
    """(process, url, port) of `serve --model MODEL_DIR EXTRA...`, once it answers /readyz."""
    server = start_server(model_dir, *extra, env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
                          timeout=2 * HANG_GUARD_S)
    return server.proc, server.url, server.port


@pytest.fixture(scope="module")
def server(tiny_run):
    proc, url, _ = start(tiny_run / "model", "--max-wait-ms", "30", "--max-texts", "8", "--max-chars", "200")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
