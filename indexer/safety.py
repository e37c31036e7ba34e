"""The mixed safety collection: benign documents plus labelled harmful / refusal passages, and labelled search.

A thin layer over ``pipeline.index_corpus``: passages become one-file-per-passage documents of their
own corpus, are indexed like any corpus (idempotent, resumable), then every point gets its ``label``
in the payload (``harmful``, ``refusal`` or ``benign``). ``search_labelled`` returns hits with labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qdrant_client import QdrantClient, models

from encoder import Encoder

from .corpus import Corpus, SourceDoc
from .pipeline import IndexReport, index_corpus
from .search import Hit, search
from .store import corpus_filter

LABELS = ("harmful", "refusal", "benign")
PASSAGES_CORPUS = "safety-passages"  # the ``corpus`` payload value of the labelled passages
SAFETY_COLLECTION = "safety"


@dataclass(frozen=True)
class LabelledPassage:
    """One passage of the safety corpus; ``source`` must be unique (e.g. 'pyrit/many_shot/12')."""

    text: str
    label: str
    source: str


@dataclass
class LabelledHit:
    hit: Hit
    label: str


def passages_corpus(passages: Sequence[LabelledPassage]) -> Corpus:
    """The passages as a corpus of plain-text documents (one per passage); ValueError on an unknown label."""
    bad = sorted({p.label for p in passages} - set(LABELS))
    if bad:
        raise ValueError(f"unknown safety labels {bad}; use {LABELS}")
    # no title: the label must not reach the embedded text
    return Corpus(PASSAGES_CORPUS, docs=[SourceDoc(p.source, p.text, "text", "") for p in passages])


def set_labels(client: QdrantClient, collection: str, labels: dict[str, str], corpus: str, batch: int = 256) -> None:
    """Write ``label`` into the payload of the points of ``corpus``: ``labels`` maps source -> label."""
    by_label: dict[str, list[str]] = {}
    for source, label in labels.items():
        by_label.setdefault(label, []).append(source)
    for label, sources in by_label.items():
        for start in range(0, len(sources), batch):
            match = models.FieldCondition(key="source", match=models.MatchAny(any=sources[start : start + batch]))
            selector = models.Filter(must=[*corpus_filter(corpus).must, match])
            client.set_payload(collection, {"label": label}, points=selector, wait=True)


def index_safety(
    client: QdrantClient,
    encoder: Encoder,
    passages: Sequence[LabelledPassage],
    benign: Iterable[Corpus] = (),
    collection: str = SAFETY_COLLECTION,
    **kwargs,
) -> list[IndexReport]:
    """Index benign corpora (every chunk labelled ``benign``) and the labelled passages into one collection.

    ``kwargs`` go to ``index_corpus`` (batch_size, recreate, show_progress, settings); ``recreate`` only
    applies to the first corpus indexed.
    """
    reports = []
    for corpus in [*benign, passages_corpus(passages)]:
        reports.append(index_corpus(client, encoder, corpus, collection, **kwargs))
        kwargs["recreate"] = False
        if corpus.root == PASSAGES_CORPUS:
            set_labels(client, collection, {p.source: p.label for p in passages}, PASSAGES_CORPUS)
        else:
            client.set_payload(collection, {"label": "benign"}, points=corpus_filter(corpus.root), wait=True)
    return reports


def search_labelled(client: QdrantClient, encoder: Encoder, collection: str, query: str, k: int = 5) -> list[LabelledHit]:
    """Top-k hits of a query with each point's safety label ('unlabelled' if it has none)."""
    hits = search(client, encoder, collection, query, k).hits
    points = client.retrieve(collection, [h.id for h in hits], with_payload=["label"]) if hits else []
    labels = {str(p.id): (p.payload or {}).get("label", "unlabelled") for p in points}
    return [LabelledHit(h, labels.get(h.id, "unlabelled")) for h in hits]
