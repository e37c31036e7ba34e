"""`gensearch index`, `gensearch search` and `gensearch ask`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from encoder.cli_support import EncoderOption, fail, user_errors

if TYPE_CHECKING:
    from encoder.settings import Settings

    from .sync import FolderOptions

SHOWN_SKIPS = 20


# The read options of `search` and `ask`: who is asking, metadata filters, retrieval mode.
AsUser = Annotated[str | None, typer.Option("--as", help="Search as this user (groups from GENSEARCH_USERS_FILE); default: anonymous, public documents only.")]
Folder = Annotated[str | None, typer.Option(help="Only documents under this folder of the corpus (relative to its root, e.g. hr/policies).")]
FileTypes = Annotated[list[str] | None, typer.Option("--type", help="Only these file types (markdown, rst, html, text, pdf, docx, pptx, xlsx, odt, ods, odp, eml); repeat for several.")]
ModifiedAfter = Annotated[str | None, typer.Option(help="Only files modified on or after this ISO date (2026-11-30, UTC).")]
ModifiedBefore = Annotated[str | None, typer.Option(help="Only files modified before this ISO date.")]
ModeOption = Annotated[str | None, typer.Option(help="dense (the encoder), hybrid (dense + BM25 keywords, fused in Qdrant), sparse (keywords) or auto (hybrid where the collection has keyword vectors, else dense); default GENSEARCH_SEARCH_MODE (dense).")]
SafetyOption = Annotated[str | None, typer.Option(help="A query the refusal gate reads as a harmful request: route (LLM2Vec-Gen's own vector pulled towards refusals, dense only), block (no hits) or off; default GENSEARCH_SAFETY (route).")]


def default_collection(encoder: str | None, base: str, default_encoder: str) -> str:
    """``base`` (``settings.collection``, or ``safety``) for the default encoder (``settings.encoder``);
    ``<base>-<encoder>`` (e.g. python-docs-baseline) for any other."""
    return base if encoder in (None, "", "default", default_encoder) else f"{base}-{Path(encoder).name}"


def _settings() -> Settings:
    """The settings of this command (read from the environment once per process, ``get_settings``)."""
    from encoder.settings import get_settings

    return get_settings()


def indexer_errors():
    """``user_errors`` for the indexer's own errors (corpus, permissions and query errors are ValueErrors) and unknown model names."""
    from .distributed import DistributedError
    from .store import StoreError

    return user_errors(DistributedError, StoreError, KeyError)


SafetyPassages = Callable[["Settings", int | None], Sequence]  # (settings, at most N per label or None: all) -> labelled passages


def index_command(safety_passages: SafetyPassages | None = None) -> Callable[..., None]:
    """The `gensearch index` command. ``--safety`` indexes the labelled passages ``safety_passages`` returns
    (the indexer knows no data sets; the top-level CLI wires in the evaluation's safety corpus)."""

    def index(
        path: Annotated[Path | None, typer.Argument(help="Folder of documents (recursive): .txt .md .rst .html .pdf, Word .docx, PowerPoint .pptx, Excel .xlsx, OpenDocument .odt/.ods/.odp, mail .eml.")] = None,
        python_docs: Annotated[bool, typer.Option("--python-docs", help="Index the built-in Python docs corpus.")] = False,
        safety: Annotated[bool, typer.Option("--safety", help="Index the labelled safety corpus (FAQ answers + harmful / refusal passages) for the app's safety panel.")] = False,
        collection: Annotated[str | None, typer.Option("--collection", "-c", help="Default: python-docs[-ENCODER] (--safety: safety[-ENCODER]).")] = None,
        encoder: EncoderOption = None,
        limit: Annotated[int | None, typer.Option(help="Index only the first N files (sorted paths); --safety: at most N passages per label.")] = None,
        glob: Annotated[str | None, typer.Option(help="Only files whose path under the root matches, e.g. 'faq/*'.")] = None,
        recreate: Annotated[bool, typer.Option("--recreate", help="Drop the collection first (e.g. after training a new adapter).")] = False,
        batch_size: Annotated[int, typer.Option(help="Chunks embedded and written per batch.")] = 64,
        workers: Annotated[int | None, typer.Option("--workers", min=1, help="Embed on N Ray workers (a local Ray; one encoder each); see docs/scaling.md.")] = None,
        ray_address: Annotated[str | None, typer.Option("--ray-address", help="Embed on an existing Ray cluster (host:port, ray://host:port or auto); --workers sets how many encoders.")] = None,
        access: Annotated[str | None, typer.Option(help="Readers of documents no .gensearch.yml rule matches: deny or public. Default: what the collection recorded for this folder; for a new folder GENSEARCH_ACCESS_DEFAULT, else deny if it has rules and public if not.")] = None,
        allow_widen: Annotated[bool, typer.Option("--allow-widen", help="Let this run give documents more readers than they had, or drop rules files the last run read (refused otherwise).")] = False,
    ) -> None:
        """Chunk, embed and store documents in Qdrant; re-running only embeds what changed
        (--encoder: default GENSEARCH_ENCODER, llm2vec-gen-fused)."""
        if (path is not None) + python_docs + safety != 1:
            raise fail("give a folder PATH, --python-docs or --safety (one of them)", 2)
        if access not in (None, "deny", "public"):
            raise fail(f"--access must be deny or public, not {access!r}", 2)
        distributed = Distributed(workers, ray_address) if workers is not None or ray_address else None
        settings = _settings()
        collection = collection or default_collection(encoder, "safety" if safety else settings.collection, settings.encoder)
        encoder = encoder or settings.encoder
        if safety:
            if distributed:
                raise fail("--workers / --ray-address index folders; the safety corpus is indexed in one process", 2)
            if safety_passages is None:
                raise fail("this command has no safety corpus; use `gensearch index --safety`")
            return index_safety_corpus(
                collection, encoder, lambda: safety_passages(settings, limit), recreate, batch_size, settings
            )
        from .corpus import python_docs_dir

        with indexer_errors():
            root = python_docs_dir(settings) if python_docs else path
        from .sync import FolderOptions

        options = FolderOptions(glob, limit, recreate, batch_size, access, settings.access_default, allow_widen)
        index_folder(root, collection, encoder, options, settings, distributed)

    return index


class Distributed(NamedTuple):
    """`--workers` / `--ray-address`: embed on Ray (indexer.distributed) instead of in this process."""

    workers: int | None
    ray_address: str | None


def index_folder(root: Path, collection: str, encoder: str, options: FolderOptions, settings: Settings, distributed: Distributed | None = None) -> None:
    """`gensearch index PATH|--python-docs`: one folder of documents into ``collection`` (on Ray if ``distributed``).

    A folder inside one the collection already holds is indexed as part of it (``corpora.locate``)."""
    from encoder import load_encoder

    from .pipeline import index_corpus
    from .store import connect
    from .sync import open_folder

    with indexer_errors(), connect(settings) as client:
        corpus, folder, recorded = open_folder(client, collection, root, options, settings=settings)
        root = Path(corpus.root)
        if folder:
            typer.echo(f"{folder}/ is part of {root}, already in {collection}: indexing it with the rules from {root} down", err=True)
        for skip in corpus.skipped[:SHOWN_SKIPS]:
            typer.echo(f"skipped {skip.path}: {skip.reason}", err=True)
        if len(corpus.skipped) > SHOWN_SKIPS:
            typer.echo(f"... and {len(corpus.skipped) - SHOWN_SKIPS} more skipped files", err=True)
        if not corpus.files and not recorded:  # a folder the collection holds that lost all its files is emptied
            raise fail(f"no indexable files under {root / folder if folder else corpus.root} ({corpus.summary()})")
        write = dict(settings=settings, batch_size=options.batch_size, recreate=options.recreate, allow_widen=options.allow_widen)
        if distributed:
            from .distributed import import_ray, index_corpus_distributed

            import_ray()  # a missing Ray fails before any model is loaded
            report = index_corpus_distributed(client, encoder, corpus, collection, workers=distributed.workers, ray_address=distributed.ray_address, **write)
        else:
            report = index_corpus(client, load_encoder(encoder, settings=settings), corpus, collection, **write)
    typer.echo(corpus.summary())
    typer.echo(report.summary())
    if "workers" in report.timings:
        typer.echo(f"embedded on {report.timings['workers']:.0f} Ray workers, {report.timings['nodes']:.0f} node(s)")


def index_safety_corpus(collection: str, encoder: str, load_passages: Callable[[], Sequence], recreate: bool, batch_size: int, settings: Settings) -> None:
    """`gensearch index --safety`: labelled passages, every point carrying its label."""
    from encoder import load_encoder

    from .labels import LABELS
    from .safety import index_safety
    from .store import connect

    with indexer_errors():
        passages = load_passages()
        enc = load_encoder(encoder, settings=settings)
        with connect(settings) as client:
            report = index_safety(client, enc, passages, collection, settings=settings, batch_size=batch_size, recreate=recreate)
    counts = {label: sum(p.label == label for p in passages) for label in LABELS}
    typer.echo(f"{len(passages)} safety passages ({', '.join(f'{n} {label}' for label, n in counts.items())})")
    typer.echo(report.summary())


def search_filter(as_user: str | None, folder: str | None, types: list[str] | None, after: str | None, before: str | None, settings: Settings):
    """The ``SearchFilter`` of the CLI options: the caller from the users file, and metadata restrictions."""
    from .filters import SearchFilter, parse_date
    from .permissions import principal_for

    try:
        dates = {name: parse_date(value) if value else None for name, value in (("modified_after", after), ("modified_before", before))}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return SearchFilter(principal=principal_for(as_user, settings.users_file), folder=folder, formats=tuple(types or ()), **dates)


def _open(collection: str | None, encoder: str | None, query: str, settings: Settings):
    """(client, encoder, collection): the encoder named, or the one the collection was built with."""
    from .search import QueryError

    if not query.strip():
        raise QueryError("the query is empty: type what you are looking for")
    from encoder import load_encoder

    from .identity import load_encoder_for
    from .store import collection_identity, open_client

    collection = collection or default_collection(encoder, settings.collection, settings.encoder)
    client = open_client(settings)
    try:
        enc = load_encoder(encoder, settings=settings) if encoder else load_encoder_for(collection_identity(client, collection), settings)
    except BaseException:
        client.close()
        raise
    return client, enc, collection


def search(
    query: Annotated[str, typer.Argument(help="What you are looking for.")],
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 5,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    encoder: EncoderOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable hits (id, score, source, text, keywords).")] = False,
    as_user: AsUser = None,
    folder: Folder = None,
    file_type: FileTypes = None,
    modified_after: ModifiedAfter = None,
    modified_before: ModifiedBefore = None,
    mode: ModeOption = None,
    safety: SafetyOption = None,
    per_document: Annotated[bool, typer.Option("--per-document", help="At most one chunk per document (its best one): k documents.")] = False,
) -> None:
    """Top-k chunks for a query, with their logit-lens keywords (--encoder: default the one the collection was built with).
    A query the model reads as a harmful request is routed or blocked (--safety) and the output says so."""
    from .identity import identity_of
    from .search import search as run_search

    settings = _settings()
    with indexer_errors():
        filters = search_filter(as_user, folder, file_type, modified_after, modified_before, settings)
        client, enc, collection = _open(collection, encoder, query, settings)
        with closing(client):
            result = run_search(client, enc, collection, query, k, filters, mode or settings.search_mode, safety or settings.safety, per_document)
    if as_json:
        out = {
            "query": query,
            "collection": collection,
            "encoder": identity_of(enc, settings).to_dict(),
            "safety": result.safety.as_dict() if result.safety else None,
            "hits": [h.as_dict() for h in result.hits],
            "timings": {"encode_s": result.encode_seconds, "qdrant_s": result.qdrant_seconds},
        }
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if result.safety is not None and result.safety.harmful:
        typer.secho(f"Safety: {result.safety.reason}.", fg="yellow", err=True)
    for rank, hit in enumerate(result.hits, start=1):
        where = " > ".join(p for p in (hit.title, hit.section) if p)
        typer.secho(f"{rank}. {hit.score:.3f}  {hit.source}  [{where}]", bold=True)
        typer.echo("   " + " ".join(hit.text.split())[:300])
        if hit.keywords:
            typer.echo(f"   lens: {', '.join(hit.keywords)}")
    typer.echo(f"({collection}; encode {result.encode_seconds * 1000:.0f} ms, qdrant {result.qdrant_seconds * 1000:.0f} ms)", err=True)


def ask(
    question: Annotated[str, typer.Argument(help="A question about the indexed documents.")],
    k: Annotated[int, typer.Option("-k", help="Chunks given to the LLM.")] = 3,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    encoder: EncoderOption = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable answer and citations.")] = False,
    as_user: AsUser = None,
    folder: Folder = None,
    file_type: FileTypes = None,
    modified_after: ModifiedAfter = None,
    modified_before: ModifiedBefore = None,
    mode: ModeOption = None,
    safety: SafetyOption = None,
) -> None:
    """Answer a question from the indexed chunks with the local backbone, citing them as [n]
    (--encoder: default the one the collection was built with; --safety as for search)."""
    from .rag import ask_stream

    settings = _settings()
    with indexer_errors():
        filters = search_filter(as_user, folder, file_type, modified_after, modified_before, settings)
        client, enc, collection = _open(collection, encoder, question, settings)
        with closing(client):
            stream = ask_stream(client, enc, collection, question, k, max_new_tokens, filters, mode=mode or settings.search_mode,
                                safety=safety or settings.safety, settings=settings)
            if not as_json:
                for piece in stream:  # the answer as the model writes it
                    typer.echo(piece, nl=False)
            answer = stream.answer()
    if as_json:
        typer.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo("" if answer.answer else "(no answer)")
    typer.echo("\nSources:")
    for c in answer.citations:
        where = " > ".join(p for p in (c.title, c.section) if p)
        typer.echo(f"  [{c.n}]{'*' if c.cited else ' '} {c.source}  [{where}]  score {c.score:.3f}")


store_app = typer.Typer(help="The vector store: check it, snapshot a collection to a file and restore it, migrate it to Qdrant Edge.", no_args_is_help=True)


@store_app.command("check")
def store_check(collection: Annotated[str | None, typer.Option("--collection", "-c", help="Only this collection (default: all).")] = None) -> None:
    """Verify the store (embedded or GENSEARCH_QDRANT_URL): it opens, and every gensearch collection has its encoder
    recorded, vectors of the right size, keyword vectors, readers on every chunk, no chunks left hidden by an
    interrupted run, and its folders on disk. Exit 1 if anything is an error."""
    from .edge import EdgeClient
    from .store import connect
    from .store_check import check_collection, check_store

    settings = _settings()
    with indexer_errors(), connect(settings) as client:
        if collection and not client.collection_exists(collection):
            raise fail(f"collection {collection!r} does not exist")
        findings = check_collection(client, collection) if collection else check_store(client)
        engine = "Qdrant server" if settings.qdrant_url else "Qdrant Edge" if isinstance(client, EdgeClient) else "qdrant-client local mode"
    where = settings.qdrant_url or settings.qdrant_path
    typer.echo(f"store {where} ({engine}): {len({f.collection for f in findings})} collection(s)")
    for finding in findings:
        typer.echo(finding.line())
    if any(f.level == "error" for f in findings):
        raise typer.Exit(1)


def watch(
    path: Annotated[Path, typer.Argument(help="The folder to keep in step (as for `gensearch index PATH`).")],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Default: python-docs[-ENCODER].")] = None,
    encoder: EncoderOption = None,
    allow_widen: Annotated[bool, typer.Option("--allow-widen", help="Let runs give documents more readers or drop rules files (refused otherwise, and retried at the next change).")] = False,
    quiet: Annotated[float, typer.Option(min=0.1, help="Seconds without changes before a burst of edits is applied.")] = 1.0,
) -> None:
    """Keep a collection in step with a folder: reconcile now, then apply adds, edits, moves, deletes and
    .gensearch.yml changes within seconds (only changed files are read). Holds the store while it runs;
    Ctrl-C or SIGTERM stops it cleanly (after applying pending changes). A restart misses nothing."""
    import signal
    import threading
    import time

    from encoder import load_encoder

    from .store import connect
    from .sync import FolderOptions
    from .watch import FolderWatch

    settings = _settings()
    collection = collection or default_collection(encoder, settings.collection, settings.encoder)
    stop = threading.Event()

    def report(corpus, result, error) -> None:
        if error is not None:
            typer.secho(f"not synced: {error}", fg="yellow", err=True)
        else:
            typer.echo(f"{time.strftime('%H:%M:%S')} {result.summary()}")

    with indexer_errors():
        enc = load_encoder(encoder or settings.encoder, settings=settings)
        with connect(settings) as client:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            typer.echo(f"watching {path} -> {collection} (Ctrl-C to stop)", err=True)
            FolderWatch(client, enc, path, collection, FolderOptions(new_folders=settings.access_default, allow_widen=allow_widen),
                        settings=settings, quiet=quiet).run(stop, report)
    typer.echo("stopped", err=True)


@store_app.command("snapshot")
def store_snapshot(
    collection: Annotated[str, typer.Option("--collection", "-c", help="The collection to copy.")],
    out: Annotated[Path | None, typer.Argument(help="Snapshot file to write (default: <collection>-<date>.snapshot.tar).")] = None,
) -> None:
    """Copy a collection (vectors, keyword vectors, payloads, its encoder and folder records) into one file, holding
    the store meanwhile (a consistent copy). `gensearch store restore` brings it back, into any store."""
    import datetime

    from .snapshot import snapshot
    from .store import connect

    settings = _settings()
    out = out or Path(f"{collection}-{datetime.date.today().isoformat()}.snapshot.tar")
    with indexer_errors(), connect(settings) as client:
        count = snapshot(client, collection, out)
    typer.echo(f"wrote {out}: {count} points of {collection}")


@store_app.command("restore")
def store_restore(
    snapshot_file: Annotated[Path, typer.Argument(help="A file written by `gensearch store snapshot`.")],
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Restore under this name (default: the snapshot's).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the collection if it exists.")] = False,
) -> None:
    """Recreate a collection from a snapshot file (the embedded store or GENSEARCH_QDRANT_URL) and check its count."""
    from .snapshot import restore
    from .store import connect

    settings = _settings()
    with indexer_errors(), connect(settings) as client:
        name, count = restore(client, snapshot_file, collection, force)
    typer.echo(f"restored {count} points into {name}")


@store_app.command("migrate")
def store_migrate(
    batch_size: Annotated[int, typer.Option(min=1, help="Points copied per durable step (a killed run goes on from the last one).")] = 512,
) -> None:
    """Move the embedded store (GENSEARCH_QDRANT_PATH) from qdrant-client's local mode to Qdrant Edge, in place: every
    collection copied, checked id for id, then the local mode's files moved to local-mode-backup/. Resumable: re-run
    after a kill. Needs the store to itself (stop the app and watchers first)."""
    from .migrate import migrate_store

    settings = _settings()
    if settings.qdrant_url:
        raise fail("GENSEARCH_QDRANT_URL is set: a Qdrant server needs no migration (migrate works on the embedded store)")
    with indexer_errors():
        moved = migrate_store(settings.qdrant_path, batch_size)
    if not moved:
        typer.echo(f"{settings.qdrant_path}: nothing to migrate (the store is already Qdrant Edge)")
    for m in moved:
        typer.echo(f"migrated {m.collection}: {m.points} points, ids verified")
    if moved:
        typer.echo(f"the local mode's files are in {settings.qdrant_path / 'local-mode-backup'} (delete it when satisfied)")
