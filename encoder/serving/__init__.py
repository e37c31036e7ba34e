"""Serve an encoder over HTTP: OpenAI-compatible ``/v1/embeddings`` with dynamic batching, decode, logit lens.

    gensearch serve --encoder test --port 8000          # or, in Python:
    from encoder.serving import BackgroundServer, create_app
    with BackgroundServer(create_app(load_encoder("test"))) as server:
        ...  # POST server.url + "/v1/embeddings" {"input": ["..."], "task": "query"}

Layout: ``batcher`` (asyncio micro-batcher, one model thread, bounded queue), ``ops`` (what the model thread
does per batch), ``schemas`` (pydantic bodies), ``api`` (FastAPI routes and errors), ``server`` (uvicorn),
``cli`` (``gensearch serve``).
"""

from .api import ApiError, create_app
from .batcher import BatcherClosedError, MicroBatcher, QueueFullError
from .server import BackgroundServer, run

__all__ = ["ApiError", "BackgroundServer", "BatcherClosedError", "MicroBatcher", "QueueFullError", "create_app", "run"]
