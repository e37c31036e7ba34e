"""`gensearch serve`: the encoder as an HTTP service (OpenAI-compatible embeddings, dynamic batching)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from ..cli_support import EncoderOption, Threads, user_errors


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: GENSEARCH_SERVE_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: GENSEARCH_SERVE_PORT or 8000).")] = None,
    encoder: EncoderOption = None,
    model_name: Annotated[str | None, typer.Option(help="Model id clients send and /v1/models lists (default: the encoder's name).")] = None,
    device: Annotated[str | None, typer.Option(help="auto (CUDA if present, else CPU), cpu, cuda, cuda:1 (default: GENSEARCH_DEVICE).")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Most texts per model batch (default: 32).")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(help="How long an idle server waits for a batch to fill (default: 5).")] = None,
    max_queue: Annotated[int | None, typer.Option(help="Most texts queued or running before 429 (default: 512).")] = None,
    max_items: Annotated[int | None, typer.Option(help="Most texts per request (default: 128).")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Longest text accepted, in characters (default: 20000).")] = None,
    torch_threads: Threads = None,
) -> None:
    """Serve the encoder over HTTP: POST /v1/embeddings (OpenAI shape), /v1/decode, /v1/logit-lens; GET /health, /v1/models
    (--encoder: default GENSEARCH_ENCODER, llm2vec-gen-fused)."""
    from ..loading import load_encoder
    from ..settings import Settings
    from .api import check_serve_settings, create_app
    from .server import run

    overrides = {
        "serve_host": host, "serve_port": port, "device": device, "serve_max_batch_size": max_batch_size,
        "serve_max_wait_ms": max_wait_ms, "serve_max_queue": max_queue, "serve_max_items": max_items,
        "serve_max_chars": max_chars,
    }
    with user_errors(code=2):  # pydantic's ValidationError is a ValueError
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        check_serve_settings(settings)  # before the (slow) model load
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        app = create_app(load_encoder(encoder or settings.encoder, settings=settings), settings, model_name=model_name)
    keys = len(settings.serve_api_keys)
    typer.echo(f"serving {app.state.model_name} on http://{settings.serve_host}:{settings.serve_port} (docs at /docs); "
               + (f"{keys} API key(s) required" if keys else "no API key required"))
    if not keys and not is_loopback(settings.serve_host):
        typer.secho(f"warning: {settings.serve_host} is reachable from other machines and no API key is set; "
                    "set GENSEARCH_SERVE_API_KEYS", err=True, fg="yellow")
    run(app, settings.serve_host, settings.serve_port)
