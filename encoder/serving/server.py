"""Run the app with uvicorn: in the foreground (``gensearch serve``) or in a background thread (tests, benchmarks).

One uvicorn process, one worker: the model is loaded once and batching needs every request in one place.
Scale out with more replicas behind a load balancer, not more workers per replica.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class RedactQueryStrings(logging.Filter):
    """Cut the query string from access-log lines: a client may put a key or a query's text there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str) and "?" in record.args[2]:
            record.args = (*record.args[:2], record.args[2].split("?", 1)[0] + "?[redacted]", *record.args[3:])
        return True


def run(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C / SIGTERM shut down gracefully); access logs never show query strings."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, workers=1, timeout_graceful_shutdown=10)
    logging.getLogger("uvicorn.access").addFilter(RedactQueryStrings())  # after Config: it configures uvicorn's loggers
    uvicorn.Server(config).run()


class BackgroundServer:
    """``with BackgroundServer(app) as server: httpx.get(server.url + "/health")`` on a free loopback port."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 120.0):
        self.app, self.host, self.port, self.startup_timeout = app, host, port, startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
