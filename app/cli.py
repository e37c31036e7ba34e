"""The `gensearch` command: one entry point, one sub-command group per package."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Annotated

import typer

from app.launch import app
from encoder.cli import embed, models_app
from encoder.cli_support import Threads
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


@cli.command("adapt")
def adapt(
    collection: Annotated[str, typer.Argument(help="The collection whose queries get their own adapter (fused mode, the default).")],
    max_chunks: Annotated[int, typer.Option(min=1, help="Chunks sampled (seeded) for the backbone to write questions about.")] = 1000,
    questions: Annotated[int, typer.Option(min=1, max=8, help="Questions asked per chunk.")] = 3,
    minutes: Annotated[float | None, typer.Option(min=5, help="Time budget of the run: the backbone stops writing questions in time for the rest (a re-run asks the chunks left). Default: every sampled chunk.")] = None,
    status: Annotated[bool, typer.Option("--status", help="Show the collection's adaptation and exit.")] = False,
    undo: Annotated[bool, typer.Option("--undo", help="Give the collection's queries back the adapter they had before and exit.")] = False,
    include_restricted: Annotated[bool, typer.Option("--include-restricted", help="Also learn from chunks not everyone may read (the adapter serves every caller of the collection; default: public chunks only).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    threads: Threads = 2,
) -> None:
    """Adapt search to a collection's own documents, self-supervised, on this machine: the backbone writes the questions
    each sampled chunk answers, and a map of the collection's query vectors learns to put each question on its chunk
    (InfoNCE, with general training data mixed in; harmful requests the gate routes are never mapped). No labels,
    nothing re-embedded; every read path then uses the collection's adapter. About 25 min per 1,000 chunks on a 2-core CPU, mostly writing questions (--minutes caps it); kill it any time
    and re-run to go on. The report shows held-out generated questions' retrieval before and after."""
    import json

    import torch

    from encoder.cli_support import fail, library_errors
    from encoder.settings import get_settings
    from indexer.errors import StoreError
    from training.adapt import AdaptConfig, AdaptError

    from .adapt import adapt_collection, adapt_status, undo_adapt

    settings = get_settings()
    try:
        if status or undo:
            if undo:
                was = undo_adapt(settings, collection)
                typer.echo(f"{collection}: queries use the installed adapter again (was {was})" if was else f"{collection} is not adapted")
                return
            record = adapt_status(settings, collection)
            typer.echo(json.dumps(record, indent=2) if json_out else _status_line(collection, record))
            return
        if threads:
            torch.set_num_threads(threads)
        report = adapt_collection(settings, collection, max_chunks, AdaptConfig(questions_per_chunk=questions, minutes=minutes), restricted=include_restricted)
    except (AdaptError, StoreError, *library_errors()) as e:
        raise fail(str(e)) from e
    typer.echo(json.dumps(report, indent=2) if json_out else _summary(report))


def _status_line(collection: str, record: dict | None) -> str:
    if not record:
        return f"{collection}: not adapted (queries use the installed adapter)"
    held = record["report"]["held_out"]
    return (f"{collection}: adapted {time.strftime('%Y-%m-%d %H:%M', time.localtime(record['at']))}, adapter {record['adapter']}\n"
            f"  held-out generated questions, MRR@10: {held['fused_before']['mrr@10']} -> {held['fused_after']['mrr@10']} "
            f"(teacher {held['teacher']['mrr@10']}); teacher's weight {record['report']['fusion_weight']}")


def _summary(report: dict) -> str:
    held, chosen = report["held_out"], report["chosen"]
    lines = [f"adapted {report['collection']}: {report['chunks']} chunks, questions {report['questions']}",
             "sample questions:", *(f"  - {q['question']}" for q in report["sample_questions"][:5]),
             f"held-out generated questions ({held['questions']}), MRR@10 / recall@10:",
             f"  before  {held['fused_before']['mrr@10']} / {held['fused_before']['recall@10']}",
             f"  after   {held['fused_after']['mrr@10']} / {held['fused_after']['recall@10']}",
             f"  teacher {held['teacher']['mrr@10']} / {held['teacher']['recall@10']}",
             f"query map: {chosen['query_map']['epochs']} epochs (mean validation MRR@10 {chosen['query_map']['mean_mrr_identity']} -> "
             f"{chosen['query_map']['mean_mrr']}); teacher's weight {chosen['fusion_weight']}",
             *_safety_lines(report.get("safety")),
             f"time per stage (s): {report['seconds']}",
             f"adapter: {report['adapter']} (undo: gensearch adapt {report['collection']} --undo)"]
    return "\n".join(lines)


def _safety_lines(safety: dict | None) -> list[str]:
    if not safety:
        return []
    before, after = safety["before"], safety["after"]
    return [f"safety, {safety['queries']} held-out harmful requests ({safety['routed']:.0%} routed), harmful@1 / share@5:",
            f"  before  {before['harmful_at_1']} / {before['harmful_share_at_5']}",
            f"  after   {after['harmful_at_1']} / {after['harmful_share_at_5']}"]


def _adapt_job(settings: Settings, collection: str, max_chunks: int) -> dict:
    """`gensearch adapt` as a function, for `gensearch eval adapt` (the evaluation layer does not import the app)."""
    from .adapt import adapt_collection

    return adapt_collection(settings, collection, max_chunks)


@cli.callback()
def _setup(ctx: typer.Context, verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    ctx.obj = {"adapt": _adapt_job}
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
