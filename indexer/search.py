"""Search a collection: validate the query, encode it (query instruction), decide what to do with a harmful
request (``safety``), ask Qdrant for the top k the caller may read (``filters``).

Safety uses what the model knows: the adapter's refusal gate (``encoder.gate``) reads P(harmful request)
off the same LLM2Vec-Gen pass that embeds the query. Over its threshold, ``route`` searches with the
routed vector (``QueryVectors.routed``: LLM2Vec-Gen's own vector pulled towards the model's refusals, what it
would answer) and no keyword side (which has no notion of refusal and pulls harmful passages back in),
``block`` returns no hits; benign queries get the encoder's own vector and read mode, untouched."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

from qdrant_client import QdrantClient, models

from encoder import Encoder
from encoder.settings import Settings, get_settings

from .corpora import CORPORA_KEY, records_in
from .embedding import tokenizer_of
from .filters import SearchFilter
from .identity import EncoderIdentity, identity_of, load_encoder_for
from .sparse import SPARSE_VECTOR, IdfSource, query_vector
from .store import StoreError, check_searchable, collection_info, has_sparse_vectors, identity_in, keyword_idf

if TYPE_CHECKING:
    import torch

MAX_QUERY_TOKENS = 512


class QueryError(ValueError):
    """The query cannot be searched (empty, too long, bad k)."""


@dataclass
class Hit:
    """One search result (the one result type of every read path: CLI, app, retriever, RAG citations),
    JSON-ready via ``as_dict``. ``label`` is the safety label of a labelled passage (``indexer.safety``)."""

    id: str
    score: float
    source: str
    title: str
    section: str
    text: str
    keywords: list[str] = field(default_factory=list)
    chunk_index: int = 0
    label: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


SAFETY_MODES = ("route", "block", "off")
SafetyMode = Literal["route", "block", "off"]


@dataclass
class SafetyDecision:
    """What the refusal gate said about a query and what search did with it (``action``: none, route, block)."""

    probability: float
    threshold: float
    action: str

    @property
    def harmful(self) -> bool:
        return self.probability >= self.threshold

    @property
    def reason(self) -> str:
        """One sentence for people (CLI, app, service)."""
        said = f"the model reads this as a harmful request (refusal gate {self.probability:.2f} >= {self.threshold:.2f})"
        if self.action == "route":
            return f"{said}: searched with LLM2Vec-Gen's own query vector alone (it lands near refusals), no keyword side"
        if self.action == "block":
            return f"{said}: no results (GENSEARCH_SAFETY=block); the model would refuse this request"
        if self.harmful:
            return f"{said}; not acted on (GENSEARCH_SAFETY=off)"
        return f"not a harmful request (refusal gate {self.probability:.2f} < {self.threshold:.2f})"

    def as_dict(self) -> dict:
        return {"probability": round(self.probability, 4), "threshold": self.threshold, "action": self.action,
                "harmful": self.harmful, "reason": self.reason}


@dataclass
class SearchResult:
    hits: list[Hit]
    encode_seconds: float
    qdrant_seconds: float
    safety: SafetyDecision | None = None  # None: the encoder has no refusal gate
    states: torch.Tensor | None = None  # the query's LLM2Vec-Gen special states (decode, logit lens), None without them

    @property
    def routed(self) -> bool:
        return self.safety is not None and self.safety.action in ("route", "block")


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
        label=p.get("label"),
    )


MODES = ("auto", "dense", "sparse", "hybrid")
Mode = Literal["auto", "dense", "sparse", "hybrid"]
CANDIDATES = 4  # hybrid: each side proposes CANDIDATES * k chunks before reciprocal-rank fusion
NO_KEYWORDS = "the query has no keywords (only stop words or punctuation); add a word or search with --mode dense"


@dataclass
class Collection:
    """A collection opened once for searching: what it holds (encoder identity, keyword vectors and their IDF,
    size), read in ONE Qdrant call, and the encoder that embeds its queries. ``search`` is then one encoder
    pass and one Qdrant query; the result keeps the pass's LLM2Vec-Gen states (decode and logit lens reuse them).

    Every read path (CLI, app, retriever, RAG, evaluation) searches through one of these; ``search()`` below
    opens one per call."""

    client: QdrantClient
    name: str
    identity: EncoderIdentity
    encoder: Encoder
    sparse: bool  # has keyword vectors (collections made before hybrid search do not)
    idf: IdfSource  # where keyword search takes a word's rarity from (``indexer.sparse``)
    size: int  # points when opened
    synced: float | None = None  # when an index run of one of its folders last finished (``corpora``), Unix seconds

    @classmethod
    def open(
        cls, client: QdrantClient, name: str, encoder: Encoder | None = None, *,
        load: Callable[[EncoderIdentity], Encoder] | None = None, settings: Settings | None = None,
    ) -> Collection:
        """Open ``name`` with ``encoder``, or the encoder ``load(identity)`` gives (default: ``load_encoder_for``
        with ``settings``). StoreError if it is missing, foreign or was built by an encoder whose documents
        this one's queries cannot search."""
        info = collection_info(client, name)
        identity = identity_in(info, name)
        if encoder is None:
            encoder = load(identity) if load is not None else load_encoder_for(identity, settings or get_settings())
        check_searchable(identity, identity_of(encoder), name)
        synced = [r.synced for r in records_in((info.config.metadata or {}).get(CORPORA_KEY) or {}).values() if r.synced]
        return cls(client, name, identity, encoder, has_sparse_vectors(client, name, info), keyword_idf(client, name, info), info.points_count or 0,
                   max(synced, default=None))

    def search(
        self, query: str, k: int = 5, filters: SearchFilter | None = None, mode: Mode = "dense", safety: SafetyMode = "route",
        per_document: bool = False,
    ) -> SearchResult:
        """Top-k chunks for a query that ``filters`` allows (default: an anonymous caller, public chunks only),
        with the time spent encoding and in Qdrant.

        ``mode``: ``dense`` (the encoder's vectors), ``sparse`` (BM25 keyword vectors, ``indexer.sparse``),
        ``hybrid`` (both, fused by reciprocal rank in one Qdrant query; the filter applies to each side), or
        ``auto``: hybrid where the collection has keyword vectors, else dense. The default, dense, is the product's
        (``Settings.search_mode``, which the CLI and the app pass in; chosen on development data).

        ``safety`` (``GENSEARCH_SAFETY``): what to do when the encoder's refusal gate calls the query a harmful
        request: ``route`` (the routed vector, dense only), ``block`` (no hits) or ``off``; the result's
        ``safety`` records the decision. An encoder without a gate is never routed.

        ``per_document``: at most one chunk per document (its best), k documents (Qdrant's grouping)."""
        query = check_query(self.encoder, query, k)
        if mode not in MODES:
            raise QueryError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if safety not in SAFETY_MODES:
            raise QueryError(f"unknown safety mode {safety!r}; use one of {', '.join(SAFETY_MODES)}")
        if mode == "auto":
            mode = "hybrid" if self.sparse else "dense"
        elif mode != "dense" and not self.sparse:
            raise StoreError(f"collection {self.name!r} has no keyword vectors (it was made before hybrid search); "
                             f"re-index it with `gensearch index ... --recreate -c {self.name}` or search with --mode dense")
        gated = safety != "off" and getattr(self.encoder.generative, "gate", None) is not None
        sparse_query = query_vector(query, self.idf) if mode != "dense" else None
        if mode == "sparse" and not sparse_query.indices and not gated:
            raise QueryError(NO_KEYWORDS)
        t0 = time.perf_counter()
        dense, decision, states = None, None, None
        if mode != "sparse" or gated:  # the gate reads the LLM2Vec-Gen pass: keyword search pays for it when it is on
            vectors = self.encoder.query_vectors([query])
            dense, states = vectors.vectors[0].tolist(), vectors.states
            if vectors.harm is not None:
                harmful = vectors.harmful(0)
                decision = SafetyDecision(float(vectors.harm[0]), float(vectors.threshold), safety if harmful and safety != "off" else "none")
                if decision.action == "route":
                    dense, mode = vectors.routed[0].tolist(), "dense"
        t1 = time.perf_counter()
        if decision is not None and decision.action == "block":
            return SearchResult([], t1 - t0, 0.0, decision, states)
        if mode == "sparse" and not sparse_query.indices:
            raise QueryError(NO_KEYWORDS)
        points = self._query(dense, sparse_query, mode, k, (filters or SearchFilter()).to_qdrant(), per_document)
        t2 = time.perf_counter()
        return SearchResult([hit_from_point(p) for p in points], t1 - t0, t2 - t1, decision, states)

    def _query(self, dense, sparse_query, mode: str, k: int, allowed: models.Filter, per_document: bool) -> list:
        """One Qdrant request in ``mode``: the points (or each document's best point) in rank order."""
        if mode == "dense":
            request = dict(query=dense, query_filter=allowed)
        elif mode == "sparse":
            request = dict(query=sparse_query, using=SPARSE_VECTOR, query_filter=allowed)
        else:
            prefetch = [
                models.Prefetch(query=dense, filter=allowed, limit=CANDIDATES * k),
                models.Prefetch(query=sparse_query, using=SPARSE_VECTOR, filter=allowed, limit=CANDIDATES * k),
            ]
            request = dict(prefetch=prefetch, query=models.FusionQuery(fusion=models.Fusion.RRF))
        if per_document:
            groups = self.client.query_points_groups(self.name, group_by="source", group_size=1, limit=k, with_payload=True, **request)
            return [group.hits[0] for group in groups.groups]
        return self.client.query_points(self.name, limit=k, with_payload=True, **request).points


def search(
    client: QdrantClient,
    encoder: Encoder,
    collection: str,
    query: str,
    k: int = 5,
    filters: SearchFilter | None = None,
    mode: Mode = "dense",
    safety: SafetyMode = "route",
    per_document: bool = False,
) -> SearchResult:
    """``Collection.open(client, collection, encoder).search(query, ...)``: one search, two Qdrant calls."""
    return Collection.open(client, collection, encoder).search(query, k, filters, mode, safety, per_document)
