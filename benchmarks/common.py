"""What the benchmark scripts share: the repository's paths, the SST-2 sentence reader and a light HTTP load client.

How the scripts import it: they are run as files, `.venv/bin/python benchmarks/X.py` (from the repository root
or anywhere else), and Python puts the running script's own folder first on `sys.path`, so a plain
`from common import ...` finds this sibling file without any `sys.path` edit. The package itself
(`modernbert_glue`) comes from the environment: the editable install in `.venv`, or `PYTHONPATH=src` where it is
not installed (the GPU machine, see gpu_protocol.py). Scripts use the package's public names only.

This module imports nothing beyond the standard library, so that every script (the GPU protocol included,
which runs without `datasets`) can use it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding `benchmarks/` and `src/`)."""

SHARED = REPO.parent / "shared"
"""The shared data and models beside the repository (`../shared`), the scripts' default inputs."""

SST2_DIR = SHARED / "data" / "sst2"
"""SST-2 as GLUE's tab-separated files: train.tsv, dev.tsv and test_labeled.tsv."""


TINY = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2}
"""ModernBERT-base shrunk to 2 layers of width 64 (the tests' tiny model): the GPU scripts' --tiny check on a CPU."""


def add_model_options(parser) -> None:
    """--model, --data-dir, --train-sentences and --tiny: the options of the scripts that train ModernBERT-base."""
    parser.add_argument("--model", default=str(SHARED / "models" / "modernbert-base"))
    parser.add_argument("--data-dir", type=Path, default=SST2_DIR)
    parser.add_argument("--train-sentences", type=int, default=None, help="the first N training rows (default all)")
    parser.add_argument("--tiny", action="store_true", help="2 layers, hidden 64: a check of the script on a CPU")


def new_output_folder(path: Path) -> Path:
    """Create `path` for a script's results; stop when it holds anything (results are never overwritten)."""
    import sys

    if path.exists() and any(path.iterdir()):
        print(f"error: {path} is not empty (results are not overwritten)", file=sys.stderr)
        sys.exit(2)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sentences(data_dir: Path, names=("dev.tsv", "test_labeled.tsv")) -> list[str]:
    """The sentence column of SST-2 files (tab-separated, header row, no quoting)."""
    out = []
    for name in names:
        out += [line.split("\t")[0] for line in (Path(data_dir) / name).read_text(encoding="utf-8").splitlines()[1:]]
    return out


async def _post(reader, writer, head: bytes, body: bytes) -> int:
    """One POST on a kept-alive HTTP/1.1 connection; the answer's status code."""
    writer.write(head + body)
    await writer.drain()
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    parts = status.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


async def load(port: int, payloads: list, clients: int, route: str = "/v1/classify",
               headers: str = "") -> list[tuple[float, int]]:
    """`clients` concurrent connections work through `payloads` (request bodies, or (route, body) pairs);
    (latency in seconds, status code; 0 when the connection failed) per request, in completion order.

    A plain asyncio client (one thread, pre-encoded bodies) so that the load generator takes as little of the
    machine's two cores as possible from the server it measures. `headers`: extra header lines ("K: v\r\n")."""
    queue = list(reversed(payloads))
    results: list[tuple[float, int]] = []

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                item = queue.pop()
                path, body = item if isinstance(item, tuple) else (route, item)
                head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{headers}"
                        f"Content-Length: {len(body)}\r\n\r\n").encode()
                started = time.perf_counter()
                try:
                    status = await _post(reader, writer, head, body)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status = 0
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                results.append((time.perf_counter() - started, status))
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return results
