"""Whether the Hugging Face Hub can be reached: asked once per process, before anything waits on the network."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def hub_available(timeout: float = 3.0) -> bool:
    """False when offline mode is on or the Hub's host does not accept a connection within `timeout`.

    Asked once per process: transformers itself retries for ~25 s before giving up on an unreachable Hub.
    """
    if hub_offline():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
