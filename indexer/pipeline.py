"""Index a corpus into Qdrant: chunk, diff against the collection, embed what is new, upsert in batches.

Idempotent and resumable by construction: point ids come from content, so the plan is a set
difference. Chunks already stored are skipped; new ones are embedded and upserted batch by batch
(each batch is durable once written); stored chunks of this corpus that the corpus no longer
produces are removed when their file changed, is skipped for good or is gone (``removable_paths``: a file outside
a ``--glob`` / ``--limit`` selection or one unreadable this time keeps its chunks). Stale chunks are made readable
by nobody when the run is planned and deleted at its end, so a moved file's old copy is never readable under its
old rules, not even while the run goes on or after it is killed. A run killed at any point, re-run, ends with
exactly the chunks of the corpus: no duplicate, no loss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from encoder import Encoder
from encoder.settings import Settings

from .chunking import CHUNKER_VERSION, NOT_CHUNKED, chunk_documents, embed_text
from .corpora import CorpusRecord, WideningError, check_rules_files, corpus_records, mark_synced, save_record, widened, widening_message
from .corpus import Corpus, Skipped, SourceDoc, Stamp
from .embedding import embed_documents, tokenizer_of
from .identity import EncoderIdentity, identity_of
from .permissions import NOBODY, relative_path
from .sparse import SPARSE_VECTOR, document_vector
from .store import corpus_filter, delete_points, ensure_collection, finish_writes, has_sparse_vectors

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
    read: int | None = None  # files whose content was read (the others were unchanged: ``known_files``)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: chunk, embed (incl. lens), total

    @property
    def chunks_per_second(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.collection}: {self.files} files{'' if self.read is None else f' ({self.read} read)'} -> {self.chunks} chunks; added {self.added} "
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
        "modified": round(doc.modified, 6),  # microseconds: every engine gives it back exactly (Edge keeps 16 digits)
        "size": doc.size,  # the file's stamp (with mtime_ns, file_chunks and chunking: ``known_files``)
        "mtime_ns": doc.mtime_ns,
        "doc_hash": content_hash(doc.text) if doc.text else None,  # the same text at another path is the same document
    }


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def chunking_fingerprint(settings: Settings) -> str:
    """What chunks of a file depend on besides its bytes: chunk size and overlap, and how files are read and cut
    (``CHUNKER_VERSION``). A stored file with another fingerprint is read again."""
    return f"{settings.chunk_size}/{settings.chunk_overlap}/{CHUNKER_VERSION}"


DOCUMENT_FIELDS = ("readers", "path", "folders", "modified", "size", "mtime_ns", "doc_hash", "file_chunks", "chunking")


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


HIDDEN = "hidden_readers"  # a stale point's readers before it was hidden (``hide_points``)


def stored_document_fields(client: QdrantClient, collection: str, corpus: str, page: int = 1024) -> dict[str, dict]:
    """Point id -> its stored document fields (plus ``hidden_readers`` on a hidden point), every point of ``corpus``."""
    stored: dict[str, dict] = {}
    offset = None
    while True:
        points, offset = client.scroll(
            collection, scroll_filter=corpus_filter(corpus), limit=page, offset=offset, with_payload=[*DOCUMENT_FIELDS, HIDDEN], with_vectors=False
        )
        for p in points:
            fields = {k: (p.payload or {}).get(k) for k in DOCUMENT_FIELDS}
            if (p.payload or {}).get(HIDDEN):
                fields[HIDDEN] = p.payload[HIDDEN]
            stored[str(p.id)] = fields
        if offset is None:
            return stored


def known_files(client: QdrantClient, collection: str, corpus: str, fingerprint: str) -> dict[str, Stamp]:
    """Relative path -> (size, mtime_ns) of every file the collection holds *complete*: all ``file_chunks`` of it
    stored, visible, with that stamp and chunked as ``fingerprint`` says (``chunking_fingerprint``). A re-run skips
    reading these when their stamp is unchanged (the manifest is the points' own payload, so it can never disagree
    with them); a file a killed run left half-written, or chunked with other settings, is read again."""
    if not client.collection_exists(collection):
        return {}
    counts: Counter[tuple] = Counter()
    for fields in stored_document_fields(client, collection, corpus).values():
        if HIDDEN not in fields and fields.get("path") is not None and fields.get("file_chunks") and fields.get("chunking") == fingerprint:
            counts[(fields["path"], fields.get("size"), fields.get("mtime_ns"), fields["file_chunks"])] += 1
    return {path: (size, mtime) for (path, size, mtime, total), n in counts.items() if n == total and size is not None}


def readers_by_hash(stored: dict[str, dict]) -> dict[str, set[str]]:
    """Document text hash -> every reader token its stored chunks grant, wherever they are (moved files keep their text)."""
    out: dict[str, set[str]] = {}
    for fields in stored.values():
        if fields.get("doc_hash"):
            out.setdefault(fields["doc_hash"], set()).update(fields.get(HIDDEN) or fields.get("readers") or ())
    return out


def readers_by_path(stored: dict[str, dict]) -> dict[str, set[str]]:
    """Path -> every reader token its stored chunks grant (a hidden chunk counts with the readers it had)."""
    out: dict[str, set[str]] = {}
    for fields in stored.values():
        if fields.get("path") is not None:
            out.setdefault(fields["path"], set()).update(fields.get(HIDDEN) or fields.get("readers") or ())
    return out


def sync_document_fields(client: QdrantClient, collection: str, wanted: dict[str, dict], stored: dict[str, dict]) -> int:
    """Rewrite the document fields of points whose stored ones differ (no re-embedding); returns how many."""
    groups: dict[str, tuple[dict, list[str]]] = {}
    for point_id, fields in wanted.items():
        if stored.get(point_id) != fields:
            fields = {**fields, HIDDEN: None} if HIDDEN in stored.get(point_id, {}) else fields  # a hidden chunk wanted again
            groups.setdefault(json.dumps(fields, sort_keys=True), (fields, []))[1].append(point_id)
    for fields, ids in groups.values():
        for start in range(0, len(ids), 1024):
            client.set_payload(collection, fields, points=ids[start : start + 1024], wait=True)
    return sum(len(ids) for _, ids in groups.values())


def hide_points(client: QdrantClient, collection: str, stored: dict[str, dict], ids: list[str], page: int = 1024) -> None:
    """Make points readable by nobody now (stale chunks: a moved file's old copy, an old version), so no one
    reads them while the run goes on or after it is killed; ``finish_index`` deletes them at the end. Each keeps
    the readers it had (``hidden_readers``), so a re-run after a kill still knows who could read the document."""
    groups: dict[str, list[str]] = {}
    for pid in ids:
        groups.setdefault(json.dumps(stored[pid].get("readers")), []).append(pid)
    for readers, group in groups.items():
        for start in range(0, len(group), page):
            client.set_payload(collection, {"readers": [NOBODY], HIDDEN: json.loads(readers)}, points=group[start : start + page], wait=True)


def removable_paths(corpus: Corpus) -> Callable[[str | None], bool]:
    """Whether stored chunks of a path that this run did not produce may go: the file was read (its content
    changed), is skipped for good (empty, binary, too large, ...), or is gone from disk. A file outside a
    ``--glob`` / ``--limit`` selection, or one that could not be read or chunked this time, keeps its chunks."""
    read = {relative_path(doc.source, corpus.root) for doc in [*corpus.docs, *corpus.unchanged]}
    skipped = {relative_path(s.path, corpus.root): s.reason for s in corpus.skipped}

    def removable(path: str | None) -> bool:
        if path is None:  # indexed before paths were stored
            return True
        if path in skipped:
            return not skipped[path].startswith(("unreadable", NOT_CHUNKED))
        if path in read:
            return True
        return not os.path.lexists(os.path.join(corpus.root, path))

    return removable


@dataclass
class IndexPlan:
    """What a run must do, decided before anything is embedded: the pure first step of every indexer.

    ``new`` are the chunks to embed (``texts[i]`` is what the encoder reads for ``new[i]``), in
    ``order`` (longest first: least padding); ``stale`` are stored ids of this corpus that it no longer
    produces. Document fields of unchanged chunks are already synced (``updated`` of them)."""

    identity: EncoderIdentity
    sparse: bool  # the collection has keyword vectors
    chunks: list
    new: list
    stale: list[str]
    texts: list[str]
    lengths: list[int]
    order: list[int]
    fields: dict[str, dict]  # source -> document_fields
    updated: int
    seconds: float  # until the corpus was chunked (the report's `chunk` timing)
    kept: int = 0  # stored chunks of files not read this run (unchanged stamp)

    def points(self, batch: Sequence[int], vectors, words: Sequence[list[str]]) -> list[models.PointStruct]:
        """The points of ``new[i] for i in batch`` with their vectors and lens words (same order)."""
        return [
            models.PointStruct(
                id=self.new[i].id_,
                vector=point_vectors(vector, self.texts[i], self.sparse),
                payload=payload(self.new[i], self.identity, list(kw), self.fields[self.new[i].metadata["source"]]),
            )
            for i, vector, kw in zip(batch, vectors, words)
        ]


def plan_index(
    client: QdrantClient,
    encoder: Encoder,
    corpus: Corpus,
    collection: str,
    *,
    settings: Settings,
    recreate: bool = False,
    show_progress: bool = True,
    allow_widen: bool = False,
) -> IndexPlan:
    """Make sure the collection fits ``encoder``, chunk the corpus (content-hash ids), diff against what is
    stored and rewrite changed document fields. ``encoder`` is only used for its tokenizer and identity.

    A folder corpus is checked against what the collection recorded of it (``corpora``) before anything is
    written: a rules file that was there and is now missing or empty, or readers that would grow, stop the run
    with a ``PermissionsError`` unless ``allow_widen``."""
    started = time.perf_counter()
    identity = identity_of(encoder, settings)
    ensure_collection(client, collection, identity, recreate=recreate, keyword_idf=settings.keyword_idf)
    sparse = has_sparse_vectors(client, collection)
    if not sparse:
        log.warning("%s has no keyword vectors (made before hybrid search): keyword and hybrid search need `--recreate`", collection)

    tokenize = tokenizer_of(encoder)
    failed: list[Skipped] = []
    chunks = chunk_documents(
        corpus.docs, corpus.root, tokenize, settings.chunk_size, settings.chunk_overlap, show_progress=show_progress and len(corpus.docs) > 50,
        failed=failed,
    )
    if failed:  # the corpus then says what happened (summary, skipped list); their stored chunks are kept
        lost = {f.path for f in failed}
        corpus.docs = [doc for doc in corpus.docs if doc.source not in lost]
        corpus.skipped.extend(failed)
    chunked = time.perf_counter()
    stored = stored_document_fields(client, collection, corpus.root)
    per_file = Counter(c.metadata["source"] for c in chunks)
    fingerprint = chunking_fingerprint(settings)
    fields = {doc.source: {**document_fields(doc, corpus.root), "file_chunks": per_file[doc.source], "chunking": fingerprint} for doc in corpus.docs}
    unchanged = {relative_path(doc.source, corpus.root): doc for doc in corpus.unchanged}
    kept = {pid: f for pid, f in stored.items() if f.get("path") in unchanged and HIDDEN not in f}  # not read: their chunks stay
    for f in kept.values():
        fields.setdefault(unchanged[f["path"]].source, {**document_fields(unchanged[f["path"]], corpus.root), "doc_hash": f.get("doc_hash"),
                                                        "file_chunks": f["file_chunks"], "chunking": f["chunking"]})
    removable = removable_paths(corpus)
    relabel = unread_relabels(corpus, stored, fields, removable)
    check_permissions(client, collection, corpus, stored, fields, relabel, allow_widen)
    wanted = {c.id_ for c in chunks} | set(kept)
    new = [c for c in chunks if c.id_ not in stored]
    stale = [pid for pid in sorted(set(stored) - wanted) if removable(stored[pid].get("path"))]
    rewrite = {c.id_: fields[c.metadata["source"]] for c in chunks if c.id_ in stored}
    rewrite.update({pid: fields[unchanged[f["path"]].source] for pid, f in kept.items()})
    rewrite.update({pid: {**{k: stored[pid].get(k) for k in DOCUMENT_FIELDS}, "readers": list(relabel[stored[pid]["path"]])}
                    for pid in stored if stored[pid].get("path") in relabel and pid not in wanted and HIDDEN not in stored[pid]})
    updated = sync_document_fields(client, collection, rewrite, stored)
    hide_points(client, collection, stored, [pid for pid in stale if stored[pid].get("readers") != [NOBODY]])

    texts = [embed_text(c) for c in new]
    lengths = [len(tokenize(t)) for t in texts]
    order = sorted(range(len(new)), key=lambda i: -lengths[i])  # long first, like encode(): least padding
    return IndexPlan(identity, sparse, chunks, new, stale, texts, lengths, order, fields, updated, chunked - started, len(kept))


def unread_relabels(corpus: Corpus, stored: dict[str, dict], fields: dict[str, dict], removable: Callable[[str | None], bool]) -> dict[str, tuple[str, ...]]:
    """Path -> readers the rules give now, for every stored file this run neither reads nor deletes (outside a
    ``--glob`` / ``--limit`` / sub-folder selection, unreadable or not chunked this time): readers depend on the
    path alone, so a narrowed rule reaches them too. Files readable by nobody stay so (only reading them may widen)."""
    if corpus.policy is None:
        return {}
    covered = {f["path"] for f in fields.values()}
    paths = {f["path"] for f in stored.values() if f.get("path") is not None and HIDDEN not in f and f.get("readers") != [NOBODY]}
    return {path: corpus.policy.readers(path) for path in sorted(paths - covered) if not removable(path)}


def check_permissions(
    client: QdrantClient, collection: str, corpus: Corpus, stored: dict[str, dict], fields: dict[str, dict], relabel: dict[str, tuple[str, ...]],
    allow_widen: bool,
) -> None:
    """Fail closed before any write: lost rules files, then readers that would grow (``corpora``), for the files
    this run reads, the ones it relabels without reading, and a known text at a new path (a moved file or folder);
    then record the folder's access choice and rules files in the collection. Corpora that are not folders pass."""
    if corpus.access is None:
        return
    record = corpus_records(client, collection).get(corpus.root)
    lost = check_rules_files(record, corpus.root, corpus.rules_files, allow=allow_widen)
    if lost:
        log.warning("%s: indexing without rules files the last run read (--allow-widen): %s", corpus.root, ", ".join(lost))
    before = readers_by_path(stored)
    by_text = readers_by_hash(stored)
    after = {f["path"]: tuple(f["readers"]) for f in fields.values()} | relabel
    for f in fields.values():  # a moved document is compared with what could read it where it was
        if f["path"] not in before and f.get("doc_hash") in by_text:
            before[f["path"]] = by_text[f["doc_hash"]]
    changes = widened(before, after)
    if changes and not allow_widen:
        raise WideningError(widening_message(changes))
    if changes:
        log.warning("%s: readers widened for %d document(s) (--allow-widen)", corpus.root, len(changes))
    save_record(client, collection, CorpusRecord(corpus.root, corpus.chosen_access, corpus.rules_files))


def write_batches(
    client: QdrantClient,
    collection: str,
    batches: Iterable[list[models.PointStruct]],
    total: int,
    *,
    show_progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """The single writer: upsert each batch of points (waiting until durable) while the next one is produced.

    Producing batch i+1 (embedding: torch releases the GIL; or Ray workers) overlaps with writing batch i
    in a separate thread. ``on_batch(done, total)`` is called after each durable upsert. Returns points written."""
    done = 0
    with ThreadPoolExecutor(max_workers=1) as writer, tqdm(
        total=total, desc=f"index {collection}", unit="chunk", disable=not show_progress or not total
    ) as bar:
        pending: tuple[Future, int] | None = None
        for points in batches:
            if pending is not None:
                _finish(pending, bar, total, on_batch)
            done += len(points)
            pending = (writer.submit(client.upsert, collection, points=points, wait=True), done)
        if pending is not None:
            _finish(pending, bar, total, on_batch)
    return done


def _finish(pending: tuple[Future, int], bar: tqdm, total: int, on_batch: Callable[[int, int], None] | None) -> None:
    """Wait for one batch's upsert to be durable, then report progress."""
    future, done = pending
    future.result()
    bar.update(done - bar.n)
    if on_batch is not None:
        on_batch(done, total)


def finish_index(client: QdrantClient, collection: str, corpus: Corpus, plan: IndexPlan, started: float, timings: dict[str, float]) -> IndexReport:
    """Remove the stale chunks (hidden since the plan, deleted after every new one is stored), note the folder as
    synced and report the run."""
    delete_points(client, collection, plan.stale)
    if corpus.access is not None:
        mark_synced(client, collection, corpus.root)
    t0 = time.perf_counter()
    finish_writes(client, collection)
    timings = {**timings, "vector index": time.perf_counter() - t0}
    finished = time.perf_counter()
    report = IndexReport(
        collection=collection,
        files=corpus.files,
        skipped=corpus.skipped,
        chunks=len(plan.chunks) + plan.kept,
        tokens=sum(plan.lengths),
        added=len(plan.new),
        removed=len(plan.stale),
        unchanged=len(plan.chunks) - len(plan.new) + plan.kept,
        read=len(corpus.docs),
        updated=plan.updated,
        seconds=finished - started,
        timings={"chunk": plan.seconds, **timings, "total": finished - started},
    )
    log.info(report.summary())
    return report


def index_corpus(
    client: QdrantClient,
    encoder: Encoder,
    corpus: Corpus,
    collection: str,
    *,
    settings: Settings,
    batch_size: int = 64,
    recreate: bool = False,
    show_progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    allow_widen: bool = False,
) -> IndexReport:
    """Make ``collection`` hold exactly the chunks of ``corpus`` (other corpora in it are untouched).

    ``batch_size`` chunks are embedded and upserted at a time (the upsert of one batch runs while the
    next is embedded); ``on_batch(done, total)`` is called after each durable upsert (progress
    reporting, tests that interrupt a run). ``allow_widen``: see ``plan_index``. ``indexer.distributed`` runs the
    same plan on Ray workers.
    """
    started = time.perf_counter()
    plan = plan_index(client, encoder, corpus, collection, settings=settings, recreate=recreate, show_progress=show_progress, allow_widen=allow_widen)
    embed_seconds = 0.0

    def embedded_batches() -> Iterator[list[models.PointStruct]]:
        nonlocal embed_seconds
        for start in range(0, len(plan.order), batch_size):
            batch = plan.order[start : start + batch_size]
            t0 = time.perf_counter()
            vectors, words = embed_documents(encoder, [plan.texts[i] for i in batch])
            embed_seconds += time.perf_counter() - t0
            yield plan.points(batch, vectors, words)

    write_batches(client, collection, embedded_batches(), len(plan.new), show_progress=show_progress, on_batch=on_batch)
    return finish_index(client, collection, corpus, plan, started, {"embed": embed_seconds})

