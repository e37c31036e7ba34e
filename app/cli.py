"""The `gensearch` command: one entry point, one sub-command group per package."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import typer

from app.launch import app
from encoder.cli import embed, models_app
from encoder.serving.cli import serve
from evaluation.cli import eval_command
from indexer.cli import ask, index_command, search, store_app, watch
from training.cli import train_app

if TYPE_CHECKING:
    from encoder.settings import Settings


def _safety_corpus(settings: Settings, per_label: int | None):
    """The evaluation's labelled safety corpus, for `gensearch index --safety` (the indexer knows no data sets)."""
    from evaluation.datasets import safety_corpus

    return safety_corpus(settings, per_label)


cli = typer.Typer(
    help="gensearch: generative-embedding search (LLM2Vec-Gen) over your documents, offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.add_typer(models_app, name="models")
cli.add_typer(train_app, name="train")
cli.add_typer(store_app, name="store")
cli.command("embed")(embed)
cli.command("index")(index_command(safety_passages=_safety_corpus))
cli.command("search")(search)
cli.command("watch")(watch)
cli.command("ask")(ask)
cli.command("serve")(serve)
cli.command("eval")(eval_command)
cli.command("app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(app)


@cli.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
