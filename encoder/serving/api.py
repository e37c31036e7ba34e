"""The HTTP API (FastAPI): OpenAI-compatible embeddings, decode, logit lens, health and model list.

    app = create_app(load_encoder("test"), Settings())   # then: uvicorn.run(app) or BackgroundServer(app)

Every model call goes through one ``MicroBatcher`` (one model thread, bounded queue). Errors come back in
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``: bad input 400, unknown model 404,
overload 429 (with ``Retry-After``), shutting down 503, a model failure 500 for that request only; with
API keys configured (``auth``), a request without a valid ``Authorization: Bearer`` key gets 401.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Hashable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..base import Encoder
from ..settings import Settings
from .auth import unauthorized_reason
from .batcher import BatcherClosedError, MicroBatcher, QueueFullError
from .metrics import instrument
from .ops import ModelOps
from .schemas import (
    Decoded,
    DecodeRequest,
    DecodeResponse,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    Lens,
    LensRequest,
    LensResponse,
    ModelCard,
    ModelList,
    TextsRequest,
    Usage,
    check_limits,
)


class ApiError(Exception):
    """An error answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code, self.headers = status, message, type, param, code, headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    """A vector as JSON floats, or as base64 of little-endian float32 bytes (OpenAI's ``base64`` format)."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return np.asarray(vector, dtype=np.float32).tolist()


def validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One readable line from pydantic's errors, and the first offending parameter."""
    parts, param = [], None
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            parts.append(f"request body is not valid JSON: {error.get('ctx', {}).get('error', 'parse error')}")
            continue
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        param = param or (loc[0] if loc else None)
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(message if message.startswith(where) else f"{where}: {message}")
    return "; ".join(parts) or "invalid request", param


def check_serve_settings(settings: Settings) -> None:
    """Raise ValueError if the serving limits contradict each other."""
    if settings.serve_max_items > settings.serve_max_queue:
        raise ValueError(
            f"max items per request ({settings.serve_max_items}) must not exceed max queue ({settings.serve_max_queue})"
        )


def create_app(encoder: Encoder, settings: Settings, model_name: str | None = None) -> FastAPI:
    """A FastAPI app serving ``encoder`` (already loaded) with the ``serve_*`` limits of ``settings``."""
    check_serve_settings(settings)
    model_name = model_name or encoder.name
    ops = ModelOps(encoder, batch_size=settings.serve_max_batch_size, safety=settings.safety)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = MicroBatcher(
            ops.run_batch,
            max_batch_size=settings.serve_max_batch_size,
            max_wait_ms=settings.serve_max_wait_ms,
            max_queue=settings.serve_max_queue,
        )
        batcher.start()
        app.state.batcher = batcher
        metrics.watch(batcher)
        yield
        await batcher.stop()

    app = FastAPI(
        title="gensearch encoder",
        summary="LLM2Vec-Gen embeddings over HTTP (OpenAI-compatible /v1/embeddings), with dynamic batching.",
        lifespan=lifespan,
    )
    app.state.encoder = encoder
    app.state.model_name = model_name
    metrics = instrument(app)

    @app.middleware("http")
    async def _authenticate(request: Request, call_next):
        reason = unauthorized_reason(request.url.path, request.headers.get("authorization"), settings.serve_api_keys)
        if reason is not None:
            return ApiError(401, reason, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}).response()
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(exc)
        return ApiError(400, message, param=param).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Unknown routes (404), wrong methods (405) and the like, in OpenAI's error shape too."""
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return ApiError(exc.status_code, message, code=codes.get(exc.status_code), headers=getattr(exc, "headers", None)).response()

    def texts_of(body: TextsRequest) -> list[str]:
        if body.model not in (None, "", model_name):
            raise ApiError(404, f"model {body.model!r} is not served here; this server serves {model_name!r}",
                           param="model", code="model_not_found")
        try:
            check_limits(body.texts, settings.serve_max_items, settings.serve_max_chars)
        except ValueError as exc:
            raise ApiError(400, str(exc), param="input") from exc
        return body.texts

    def llm2vec_only(what: str) -> None:
        if encoder.generative is None:
            raise ApiError(400, f"{what} needs an LLM2Vec-Gen encoder; this server serves the sentence encoder {model_name!r}")

    async def run(key: Hashable, texts: list[str]) -> list[Any]:
        try:
            return await app.state.batcher.submit(key, texts)
        except QueueFullError as exc:
            raise ApiError(429, str(exc), type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"}) from exc
        except BatcherClosedError as exc:
            raise ApiError(503, str(exc), type="server_error") from exc
        except Exception as exc:  # noqa: BLE001 - a model failure fails this request only
            raise ApiError(500, f"the model failed on this request: {exc!r}", type="server_error") from exc

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, response_model_exclude_none=True)
    async def embeddings(body: EmbeddingRequest) -> EmbeddingResponse:
        """Embed texts (OpenAI embeddings API; ``task`` selects the LLM2Vec-Gen instruction)."""
        texts = texts_of(body)
        if body.dimensions is not None and body.dimensions != encoder.dim:
            raise ApiError(400, f"dimensions={body.dimensions} is not available: {model_name!r} returns {encoder.dim}-d "
                                "vectors and does not truncate; omit dimensions", param="dimensions")
        rows = await run(("embed", body.task), texts)
        data = [Embedding(index=i, embedding=encode_vector(vector, body.encoding_format), safety=safety) for i, (vector, _, safety) in enumerate(rows)]
        tokens = sum(count for _, count, _ in rows)
        return EmbeddingResponse(data=data, model=model_name, usage=Usage(prompt_tokens=tokens, total_tokens=tokens))

    @app.post("/v1/decode", response_model=DecodeResponse)
    async def decode(body: DecodeRequest) -> DecodeResponse:
        """Text each input's embedding decodes to (greedy generation from its soft prompts)."""
        llm2vec_only("decode")
        texts = texts_of(body)
        decoded = await run(("decode", body.task, body.max_new_tokens), texts)
        return DecodeResponse(data=[Decoded(index=i, text=t) for i, t in enumerate(decoded)], model=model_name)

    @app.post("/v1/logit-lens", response_model=LensResponse)
    async def logit_lens(body: LensRequest) -> LensResponse:
        """Top LM-head tokens at each special position, and the distinct words they spell."""
        llm2vec_only("logit-lens")
        texts = texts_of(body)
        rows = await run(("lens", body.task, body.top_k, body.words), texts)
        data = [Lens(index=i, tokens=tokens, words=words) for i, (tokens, words) in enumerate(rows)]
        return LensResponse(data=data, model=model_name)

    @app.get("/v1/models", response_model=ModelList)
    async def models() -> ModelList:
        """The one model this server serves (OpenAI model list shape)."""
        return ModelList(data=[ModelCard(id=model_name, created=created, dim=encoder.dim, encoder=repr(encoder))])

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness and queue state; 503 when the model worker is not running."""
        batcher: MicroBatcher = app.state.batcher
        recent = list(batcher.batch_sizes)[-1000:]
        body = {
            "status": "ok" if batcher.running else "unavailable",
            "model": model_name,
            "dim": encoder.dim,
            "device": str(getattr(encoder, "device", "unknown")),
            "queued": batcher.in_flight,
            "max_queue": batcher.max_queue,
            "max_batch_size": batcher.max_batch_size,
            "batches": batcher.batches_run,
            "mean_batch_size": round(sum(recent) / len(recent), 2) if recent else None,
        }
        return JSONResponse(body, status_code=200 if batcher.running else 503)

    return app
