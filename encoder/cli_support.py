"""What every `gensearch` command line shares: one way to fail, the user-facing errors, typed options.

At the bottom layer so that each CLI (encoder, training, indexer, evaluation, app) can import it::

    with user_errors(StoreError):          # a user error -> "error: <message>" in red on stderr, exit 1
        ...
    raise fail("give a folder PATH", 2)    # the same line and exit code, by hand

Anything else (a bug, KeyboardInterrupt) keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

ENCODER_HELP = (
    "llm2vec-gen-fused (LLM2Vec-Gen + teacher queries, teacher documents), llm2vec-gen-asym, llm2vec-gen (symmetric), "
    "teacher, baseline, test, a backbone name or an adapter folder."
)

# The options more than one command takes; each command's parameter name gives the flag (--threads, --torch-threads).
Threads = Annotated[int | None, typer.Option(min=1, help="torch CPU threads (no default shown: torch's choice, every core).")]
EncoderOption = Annotated[str | None, typer.Option("--encoder", "-e", help=ENCODER_HELP)]
OutDir = Annotated[Path | None, typer.Option("--out", help="Output folder (the command's description says what it gets and the default).")]


class Task(str, Enum):
    """Which instruction the encoder puts before the text (`gensearch embed --task`)."""

    query = "query"
    document = "document"
    similarity = "similarity"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: <message>`` in red on stderr; returns the ``typer.Exit`` to raise (``raise fail(...)``)."""
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


def library_errors() -> tuple[type[Exception], ...]:
    """The errors whose message tells the user what to do: bad input or files, adapters, model fetching."""
    from .adapter import AdapterError
    from .fetch import FetchError

    return (AdapterError, FetchError, ValueError, FileNotFoundError)


@contextmanager
def user_errors(*extra: type[Exception], code: int = 1) -> Iterator[None]:
    """Turn ``library_errors()`` and ``extra`` raised inside the block into ``fail(str(exc), code)``.

    Typer's own exits and usage errors pass through as they are; any other exception, and
    KeyboardInterrupt, propagates with its traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):  # typer's own exits, usage errors (BadParameter)
        raise
    except Exception as exc:
        if isinstance(exc, (*library_errors(), *extra)):
            raise fail(str(exc), code) from exc
        raise
