"""Start `modernbert-glue serve` in a child process and wait until it answers /health: what tests and benchmarks
that talk to a real server over HTTP share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, chosen by the OS (binding to port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a graceful shutdown), then wait; kill it if it does not end within `timeout`."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(model: str, *options: str, env: dict | None = None, timeout: float = 120,
                 quiet: bool = False) -> ServerProcess:
    """`serve --model MODEL --port <free port> OPTIONS...` in a child process, returned once /health answers 200
    (the readiness check that needs no API key).

    The deadline only guards against a hang. A server that exits first raises RuntimeError with its output."""
    import httpx

    port = free_port()
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    proc = subprocess.Popen([sys.executable, "-m", "modernbert_glue.cli", "serve", "--model", str(model),
                             "--port", str(port), *map(str, options)], stdout=out, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})})
    server = ServerProcess(proc, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}: "
                               f"{proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the server did not become ready within {timeout} s")
