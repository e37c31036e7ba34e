"""Fixtures: the real SmolLM2 LLM2Vec-Gen encoder (loaded once) and live uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from encoder import Encoder, load_encoder
from encoder.serving import BackgroundServer

from .helpers import serve


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return load_encoder("test")


@pytest.fixture(scope="module")
def server(encoder: Encoder) -> Iterator[BackgroundServer]:
    with serve(encoder, max_items=8, max_chars=200, max_batch_size=8) as running:
        yield running


@pytest.fixture
def serve_with(encoder: Encoder) -> Iterator[Callable[..., BackgroundServer]]:
    """Start a server with custom limits for one test; stopped afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda **limits: stack.enter_context(serve(encoder, **limits))
