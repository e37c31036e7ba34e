"""Serve an encoder over HTTP: OpenAI-compatible ``/v1/embeddings`` with dynamic batching, decode, logit lens.

    gensearch serve --encoder test --port 8000          # or, in Python:
    from encoder.serving import BackgroundServer, create_app
    with BackgroundServer(create_app(load_encoder("test"), Settings())) as server:
        ...  # POST server.url + "/v1/embeddings" {"input": ["..."], "task": "query"}

Layout: ``batcher`` (asyncio micro-batcher, one model thread, bounded queue), ``ops`` (what the model thread
does per batch), ``schemas`` (pydantic bodies), ``api`` (FastAPI routes and errors), ``server`` (uvicorn),
``cli`` (``gensearch serve``).
"""

from importlib import import_module

_EXPORTS = {
    "ApiError": ".api",
    "create_app": ".api",
    "BatcherClosedError": ".batcher",
    "MicroBatcher": ".batcher",
    "QueueFullError": ".batcher",
    "BackgroundServer": ".server",
    "run": ".server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # imported on first use (PEP 562): `gensearch --help` stays fast
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
