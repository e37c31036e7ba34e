"""Qdrant access: one client for the embedded store or a server, collections that know their encoder.

``open_client()`` returns ``QdrantClient(url=...)`` when ``GENSEARCH_QDRANT_URL`` is set, else the embedded store at
``GENSEARCH_QDRANT_PATH``: Qdrant Edge (``indexer.edge.EdgeClient``, the default) or, for a store qdrant-client's local
mode made, that mode (``GENSEARCH_QDRANT_ENGINE``; ``gensearch store migrate`` moves a store to Edge). Everything else is
the same code. Each collection records the identity of the encoder that filled it (collection metadata), and
``ensure_collection`` refuses to mix vectors of different encoders.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from qdrant_client import QdrantClient, models

from encoder.settings import Settings, get_settings

from .edge import EdgeClient, EdgeInUseError
from .errors import StoreError
from .identity import EncoderIdentity
from .sparse import SPARSE_VECTOR, IdfSource, sparse_params

log = logging.getLogger(__name__)

FORMAT = "gensearch-collection"
FORMAT_VERSION = 1
INDEXED_FIELDS = {  # payload fields we filter on (readers: every read path's permission filter)
    "corpus": models.PayloadSchemaType.KEYWORD,
    "source": models.PayloadSchemaType.KEYWORD,
    "readers": models.PayloadSchemaType.KEYWORD,
    "folders": models.PayloadSchemaType.KEYWORD,
    "format": models.PayloadSchemaType.KEYWORD,
    "modified": models.PayloadSchemaType.FLOAT,
}


class EncoderMismatchError(StoreError):
    """A collection was built with another encoder than the one in use."""


def open_client(settings: Settings | None = None) -> QdrantClient:
    """A connected client: the server at ``settings.qdrant_url`` if set, else the embedded store.
    A public entry point: ``settings`` defaults to ``get_settings()`` (the environment)."""
    settings = settings or get_settings()
    if settings.qdrant_url:
        # the client's own version check warns from a thread when the server is down; we report that below
        client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30, check_compatibility=False)
        try:
            client.get_collections()
        except Exception as exc:  # connection refused, DNS, TLS, auth: all end here
            raise StoreError(
                f"cannot reach the Qdrant server at {settings.qdrant_url} ({type(exc).__name__}: {exc}). "
                "Start it (`docker compose up -d qdrant`), fix GENSEARCH_QDRANT_URL / GENSEARCH_QDRANT_API_KEY, "
                f"or unset GENSEARCH_QDRANT_URL to use the embedded store at {settings.qdrant_path}."
            ) from exc
        return client
    path = settings.qdrant_path.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    engine = embedded_engine(path, settings.qdrant_engine)
    try:
        if engine == "edge":
            return EdgeClient(path)
        check_embedded_store(path)
        return QdrantClient(path=str(path))
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"the embedded Qdrant store {path} is damaged ({exc}); restore it from a copy, or move it away and "
                         "re-index (`gensearch index ... --recreate`)") from exc
    except (RuntimeError, EdgeInUseError) as exc:
        if not isinstance(exc, EdgeInUseError) and "already accessed" not in str(exc):
            raise
        raise StoreError(
            f"the embedded Qdrant store {path} is in use by another client (another `gensearch` command or "
            "the app holds its lock). Stop that process, point GENSEARCH_QDRANT_PATH at another folder, or run "
            "a Qdrant server (`docker compose up -d qdrant`) and set GENSEARCH_QDRANT_URL=http://localhost:6333 "
            "so several processes can share it."
        ) from exc


def is_local_store(path: Path) -> bool:
    """Whether qdrant-client's local mode made (and still holds) the store at ``path``."""
    return (path / "meta.json").is_file()


def embedded_engine(path: Path, engine: str = "auto") -> str:
    """``edge`` or ``local`` for the store at ``path``: ``auto`` keeps a local-mode store local, otherwise Edge."""
    if engine == "auto":
        return "local" if is_local_store(path) else "edge"
    if engine == "local" and not is_local_store(path) and any((path / "edge").glob("*/collection.json")):
        raise StoreError(f"the embedded store {path} holds Qdrant Edge collections; GENSEARCH_QDRANT_ENGINE=local would hide them "
                         "(unset it, or point GENSEARCH_QDRANT_PATH at another folder for a local-mode store)")
    if engine == "edge" and is_local_store(path):
        raise StoreError(f"the embedded store {path} was made by qdrant-client's local mode; move it to Qdrant Edge with "
                         "`gensearch store migrate` (or set GENSEARCH_QDRANT_ENGINE=local to keep using it as it is)")
    return engine


def finish_writes(client: QdrantClient | EdgeClient, collection: str) -> None:
    """After an indexing run: Qdrant Edge builds its vector index now (the local mode has none, a server builds in the
    background). Blocking; a killed run only leaves the index to build next time."""
    if isinstance(client, EdgeClient):
        log.info("building the vector index of %s", collection)
        client.optimize(collection)


def check_embedded_store(path: Path) -> None:
    """StoreError if a collection the store lists has no storage file or an empty one (the local mode would
    silently start it empty again: every search would return nothing)."""
    meta = path / "meta.json"
    if not meta.is_file():
        return
    try:
        names = list((json.loads(meta.read_text()) or {}).get("collections") or {})
    except (OSError, ValueError) as exc:
        raise StoreError(f"the embedded Qdrant store {path} is damaged: {meta} is not readable JSON ({exc}); restore it from a copy, "
                         "or move the store away and re-index") from exc
    for name in names:
        storage = path / "collection" / name / "storage.sqlite"
        if not storage.is_file() or storage.stat().st_size == 0:
            raise StoreError(f"collection {name!r} in the embedded store {path} has lost its data ({storage} is missing or empty); "
                             f"restore it from a copy, or re-index it (`gensearch index ... --recreate -c {name}`)")


@contextmanager
def connect(settings: Settings | None = None) -> Iterator[QdrantClient]:
    """``open_client`` as a context manager that always releases the embedded store's lock."""
    client = open_client(settings)
    try:
        yield client
    finally:
        client.close()


def collection_info(client: QdrantClient, collection: str) -> models.CollectionInfo:
    """Everything Qdrant knows about a collection (config, metadata, size), in one call; StoreError naming the
    collections there are if it does not exist."""
    try:
        return client.get_collection(collection)
    except Exception as exc:  # the local mode raises ValueError, a server UnexpectedResponse (404)
        if client.collection_exists(collection):
            raise
        names = ", ".join(c.name for c in client.get_collections().collections) or "none"
        raise StoreError(f"collection {collection!r} does not exist (collections: {names}); build it with `gensearch index`") from exc


def identity_in(info: models.CollectionInfo, collection: str) -> EncoderIdentity:
    """The encoder identity recorded in a collection's metadata; StoreError if it was not built by gensearch."""
    meta = info.config.metadata or {}
    if meta.get("format") != FORMAT:
        raise StoreError(f"collection {collection!r} was not built by gensearch (no encoder recorded); use another name")
    return EncoderIdentity.from_dict(meta["encoder"])


def collection_identity(client: QdrantClient, collection: str) -> EncoderIdentity:
    """The encoder identity recorded in a collection; clear errors if it is missing or foreign."""
    return identity_in(collection_info(client, collection), collection)


def ensure_collection(
    client: QdrantClient, collection: str, identity: EncoderIdentity, recreate: bool = False, keyword_idf: IdfSource = "public"
) -> bool:
    """Create the collection for ``identity`` (keyword IDF from ``keyword_idf``, ``sparse``) or check that it
    holds the same encoder's vectors.

    Returns True if it was created. Raises EncoderMismatchError if it was built with another encoder.
    """
    if recreate and client.collection_exists(collection):
        client.delete_collection(collection)
    created = not client.collection_exists(collection)
    if created:
        client.create_collection(
            collection,
            vectors_config=models.VectorParams(size=identity.dim, distance=models.Distance.COSINE),
            sparse_vectors_config={SPARSE_VECTOR: sparse_params(keyword_idf)},
            metadata={"format": FORMAT, "format_version": FORMAT_VERSION, "encoder": identity.to_dict()},
        )
        log.info("created collection %s for %s", collection, identity.label)
    else:
        check_identity(collection_identity(client, collection), identity, collection)
    with warnings.catch_warnings():  # the embedded store warns that it ignores payload indexes
        warnings.simplefilter("ignore", UserWarning)
        for name, schema in INDEXED_FIELDS.items():  # also on older collections (creating an existing index is a no-op)
            client.create_payload_index(collection, name, schema)
    return created


def check_identity(stored: EncoderIdentity, current: EncoderIdentity, collection: str) -> None:
    """Raise EncoderMismatchError unless both identities describe the same vectors."""
    if stored != current:
        raise EncoderMismatchError(
            f"collection {collection!r} holds vectors of {stored.label}, but the encoder in use is {current.label}. "
            f"Use the same encoder (`--encoder {stored.encoder}`), another collection (`--collection NAME`), "
            "or rebuild it (`gensearch index ... --recreate`)."
        )


def check_searchable(stored: EncoderIdentity, current: EncoderIdentity, collection: str) -> None:
    """Raise EncoderMismatchError unless ``current``'s query vectors can search ``stored``'s documents: the same
    identity, or a collection a sentence encoder built searched in a mode whose documents are that encoder's
    (a teacher collection in the asym or fused mode). The other way round stays an error: a fused collection
    names the encoder its queries need."""
    plain_sentence_collection = stored.encoder == stored.model and stored.adapter is None
    if not (plain_sentence_collection and current.adapter is None and (current.model, current.dim) == (stored.model, stored.dim)):
        check_identity(stored, current, collection)


def has_sparse_vectors(client: QdrantClient, collection: str, info: models.CollectionInfo | None = None) -> bool:
    """Whether the collection holds keyword (sparse) vectors: collections made before hybrid search do not."""
    info = info or client.get_collection(collection)
    return SPARSE_VECTOR in (info.config.params.sparse_vectors or {})


def keyword_idf(client: QdrantClient, collection: str, info: models.CollectionInfo | None = None) -> IdfSource:
    """Where the collection's keyword search takes IDF from: ``collection`` (Qdrant's modifier) or ``public``."""
    info = info or client.get_collection(collection)
    params = (info.config.params.sparse_vectors or {}).get(SPARSE_VECTOR)
    return "collection" if params is not None and params.modifier == models.Modifier.IDF else "public"


def corpus_filter(corpus: str) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="corpus", match=models.MatchValue(value=corpus))])


def point_ids(client: QdrantClient, collection: str, corpus: str | None = None, page: int = 1024) -> set[str]:
    """Ids of every point (of one corpus, if given) in a collection."""
    ids: set[str] = set()
    offset = None
    while True:
        points, offset = client.scroll(
            collection,
            scroll_filter=corpus_filter(corpus) if corpus else None,
            limit=page,
            offset=offset,
            with_payload=False,
            with_vectors=False,
        )
        ids.update(str(p.id) for p in points)
        if offset is None:
            return ids


def delete_points(client: QdrantClient, collection: str, ids: Sequence[str], batch: int = 1024) -> None:
    """Delete points by id, in batches, waiting for each."""
    for start in range(0, len(ids), batch):
        client.delete(collection, points_selector=models.PointIdsList(points=list(ids[start : start + batch])), wait=True)


def count(client: QdrantClient, collection: str) -> int:
    return client.count(collection, exact=True).count
