"""Small helpers shared by the serving tests."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import numpy as np

from encoder import Encoder, get_settings
from encoder.serving import BackgroundServer, create_app


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll until ``condition()`` (generous timeout; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def queued(url: str) -> int:
    return httpx.get(f"{url}/health").json()["queued"]


def serve(encoder: Encoder, **limits) -> BackgroundServer:
    """A server for ``encoder`` with ``serve_<name>`` settings overridden by ``limits``."""
    settings = get_settings().model_copy(update={f"serve_{k}": v for k, v in limits.items()})
    return BackgroundServer(create_app(encoder, settings))
