"""Search a collection: validate the query, encode it (query instruction), ask Qdrant for the top k the
caller may read (``filters``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from qdrant_client import QdrantClient

from encoder import Encoder

from .embedding import tokenizer_of
from .filters import SearchFilter
from .identity import identity_of
from .store import check_identity, collection_identity

MAX_QUERY_TOKENS = 512


class QueryError(ValueError):
    """The query cannot be searched (empty, too long, bad k)."""


@dataclass
class Hit:
    """One search result, JSON-ready via ``as_dict``."""

    id: str
    score: float
    source: str
    title: str
    section: str
    text: str
    keywords: list[str] = field(default_factory=list)
    chunk_index: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchResult:
    hits: list[Hit]
    encode_seconds: float
    qdrant_seconds: float


def check_query(encoder: Encoder, query: str, k: int = 5, max_tokens: int = MAX_QUERY_TOKENS) -> str:
    """The stripped query; QueryError if it is empty, longer than ``max_tokens`` tokens, or k < 1."""
    if not isinstance(query, str) or not query.strip():
        raise QueryError("the query is empty: type what you are looking for")
    if k < 1:
        raise QueryError(f"k must be at least 1 (got {k})")
    query = query.strip()
    n = len(tokenizer_of(encoder)(query))
    if n > max_tokens:
        raise QueryError(f"the query is {n} tokens long; the limit is {max_tokens}: shorten it to the question itself")
    return query


def hit_from_point(point) -> Hit:
    p = point.payload or {}
    return Hit(
        id=str(point.id),
        score=float(point.score),
        source=p.get("source", ""),
        title=p.get("title", ""),
        section=p.get("section", ""),
        text=p.get("text", ""),
        keywords=list(p.get("keywords") or []),
        chunk_index=int(p.get("chunk_index", 0)),
    )


def search(client: QdrantClient, encoder: Encoder, collection: str, query: str, k: int = 5, filters: SearchFilter | None = None) -> SearchResult:
    """Top-k chunks for a query that ``filters`` allows (default: an anonymous caller, public chunks only),
    with the time spent encoding and in Qdrant."""
    query = check_query(encoder, query, k)
    check_identity(collection_identity(client, collection), identity_of(encoder), collection)
    t0 = time.perf_counter()
    vector = encoder.encode([query], task="query", show_progress_bar=False)[0]
    t1 = time.perf_counter()
    allowed = (filters or SearchFilter()).to_qdrant()
    points = client.query_points(collection, query=vector.tolist(), query_filter=allowed, limit=k, with_payload=True).points
    t2 = time.perf_counter()
    return SearchResult([hit_from_point(p) for p in points], t1 - t0, t2 - t1)
