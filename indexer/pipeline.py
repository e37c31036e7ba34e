"""Index a corpus into Qdrant: chunk, diff against the collection, embed what is new, upsert in batches.

Idempotent and resumable by construction: point ids come from content, so the plan is a set
difference. Chunks already stored are skipped; new ones are embedded and upserted batch by batch
(each batch is durable once written); stored chunks of this corpus that the corpus no longer
produces (changed or deleted files) are removed. A run killed at any point, re-run, ends with
exactly the chunks of the corpus: no duplicate, no loss.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from encoder import Encoder
from encoder.settings import Settings, get_settings

from .chunking import chunk_documents, embed_text
from .corpus import Corpus, Skipped, SourceDoc
from .embedding import embed_documents, tokenizer_of
from .identity import EncoderIdentity, identity_of
from .permissions import NOBODY, relative_path
from .sparse import SPARSE_VECTOR, document_vector
from .store import corpus_filter, delete_points, ensure_collection, has_sparse_vectors

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What one indexing run did, and how fast."""

    collection: str
    files: int
    skipped: list[Skipped]
    chunks: int
    tokens: int  # tokens embedded in this run (the new chunks)
    added: int
    removed: int
    unchanged: int
    seconds: float
    updated: int = 0  # unchanged chunks whose document fields (readers, path, modified) were rewritten
    timings: dict[str, float] = field(default_factory=dict)  # seconds: chunk, embed (incl. lens), total

    @property
    def chunks_per_second(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.collection}: {self.files} files -> {self.chunks} chunks; added {self.added} "
            f"({self.tokens:,} tokens), removed {self.removed}, unchanged {self.unchanged} ({self.updated} re-labelled), "
            f"{len(self.skipped)} files skipped; {self.seconds:.1f} s ({self.chunks_per_second:.2f} chunks/s)"
        )


def document_fields(doc: SourceDoc, root: str) -> dict:
    """Payload fields that come from the document, not the chunk text: who may read it and what filters see.

    They can change without the text changing (a new ``.gensearch.yml`` rule, a touched file), so
    re-indexing rewrites them in place (``sync_document_fields``) instead of re-embedding."""
    path = relative_path(doc.source, root)
    parts = path.split("/")[:-1]
    return {
        "readers": list(doc.readers) or [NOBODY],  # never empty: empty means "indexed before permissions"
        "path": path,
        "folders": ["/".join(parts[: i + 1]) for i in range(len(parts))],  # every ancestor: folder filters
        "modified": doc.modified,
    }


DOCUMENT_FIELDS = ("readers", "path", "folders", "modified")


def payload(node, identity: EncoderIdentity, keywords: list[str], fields: dict) -> dict:
    """Stored with each point; ``text`` is the key LlamaIndex's QdrantVectorStore reads back."""
    meta = node.metadata
    return {
        **fields,
        "text": node.text,
        "source": meta["source"],
        "corpus": meta["corpus"],
        "title": meta["title"],
        "section": meta["section"],
        "chunk_index": meta["chunk_index"],
        "format": meta["format"],
        "encoder": identity.encoder,
        "model": identity.model,
        "adapter": identity.adapter,
        "keywords": keywords,
    }


def point_vectors(dense, text: str, sparse: bool) -> list[float] | dict:
    """The dense vector, plus the chunk's keyword vector when the collection has them."""
    if not sparse:
        return dense.tolist()
    return {"": dense.tolist(), SPARSE_VECTOR: document_vector(text)}


def stored_document_fields(client: QdrantClient, collection: str, corpus: str, page: int = 1024) -> dict[str, dict]:
    """Point id -> its stored document fields, for every point of ``corpus`` in the collection."""
    stored: dict[str, dict] = {}
    offset = None
    while True:
        points, offset = client.scroll(
            collection, scroll_filter=corpus_filter(corpus), limit=page, offset=offset, with_payload=list(DOCUMENT_FIELDS), with_vectors=False
        )
        stored.update({str(p.id): {k: (p.payload or {}).get(k) for k in DOCUMENT_FIELDS} for p in points})
        if offset is None:
            return stored


def sync_document_fields(client: QdrantClient, collection: str, wanted: dict[str, dict], stored: dict[str, dict]) -> int:
    """Rewrite the document fields of points whose stored ones differ (no re-embedding); returns how many."""
    groups: dict[str, tuple[dict, list[str]]] = {}
    for point_id, fields in wanted.items():
        if stored.get(point_id) != fields:
            groups.setdefault(json.dumps(fields, sort_keys=True), (fields, []))[1].append(point_id)
    for fields, ids in groups.values():
        for start in range(0, len(ids), 1024):
            client.set_payload(collection, fields, points=ids[start : start + 1024], wait=True)
    return sum(len(ids) for _, ids in groups.values())


def _finish(pending: tuple[Future, int], bar: tqdm, total: int, on_batch: Callable[[int, int], None] | None) -> None:
    """Wait for one batch's upsert to be durable, then report progress."""
    future, done = pending
    future.result()
    bar.update(done - bar.n)
    if on_batch is not None:
        on_batch(done, total)


def index_corpus(
    client: QdrantClient,
    encoder: Encoder,
    corpus: Corpus,
    collection: str,
    *,
    settings: Settings | None = None,
    batch_size: int = 64,
    recreate: bool = False,
    show_progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> IndexReport:
    """Make ``collection`` hold exactly the chunks of ``corpus`` (other corpora in it are untouched).

    ``batch_size`` chunks are embedded and upserted at a time (the upsert of one batch runs while the
    next is embedded); ``on_batch(done, total)`` is called after each durable upsert (progress
    reporting, tests that interrupt a run).
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    identity = identity_of(encoder)
    ensure_collection(client, collection, identity, recreate=recreate)
    sparse = has_sparse_vectors(client, collection)
    if not sparse:
        log.warning("%s has no keyword vectors (made before hybrid search): keyword and hybrid search need `--recreate`", collection)

    tokenize = tokenizer_of(encoder)
    chunks = chunk_documents(
        corpus.docs, corpus.root, tokenize, settings.chunk_size, settings.chunk_overlap, show_progress=show_progress and len(corpus.docs) > 50
    )
    chunked = time.perf_counter()
    fields = {doc.source: document_fields(doc, corpus.root) for doc in corpus.docs}
    stored = stored_document_fields(client, collection, corpus.root)
    wanted = {c.id_ for c in chunks}
    new = [c for c in chunks if c.id_ not in stored]
    stale = sorted(set(stored) - wanted)
    updated = sync_document_fields(client, collection, {c.id_: fields[c.metadata["source"]] for c in chunks if c.id_ in stored}, stored)

    texts = [embed_text(c) for c in new]
    lengths = [len(tokenize(t)) for t in texts]
    order = sorted(range(len(new)), key=lambda i: -lengths[i])  # long first, like encode(): least padding
    embed_seconds = 0.0
    # Embedding (torch, GIL released) of batch i+1 overlaps with writing batch i (a separate thread).
    with ThreadPoolExecutor(max_workers=1) as writer, tqdm(
        total=len(new), desc=f"index {collection}", unit="chunk", disable=not show_progress or not new
    ) as bar:
        pending: tuple[Future, int] | None = None
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            t0 = time.perf_counter()
            vectors, words = embed_documents(encoder, [texts[i] for i in batch])
            embed_seconds += time.perf_counter() - t0
            points = [
                models.PointStruct(id=new[i].id_, vector=point_vectors(vector, texts[i], sparse), payload=payload(new[i], identity, kw, fields[new[i].metadata["source"]]))
                for i, vector, kw in zip(batch, vectors, words)
            ]
            if pending is not None:
                _finish(pending, bar, len(new), on_batch)
            pending = (writer.submit(client.upsert, collection, points=points, wait=True), start + len(batch))
        if pending is not None:
            _finish(pending, bar, len(new), on_batch)
    delete_points(client, collection, stale)
    finished = time.perf_counter()
    report = IndexReport(
        collection=collection,
        files=len(corpus.docs),
        skipped=corpus.skipped,
        chunks=len(chunks),
        tokens=sum(lengths),
        added=len(new),
        removed=len(stale),
        unchanged=len(chunks) - len(new),
        updated=updated,
        seconds=finished - started,
        timings={"chunk": chunked - started, "embed": embed_seconds, "total": finished - started},
    )
    log.info(report.summary())
    return report
