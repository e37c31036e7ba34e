"""The mixed safety collection (``gensearch index --safety``) and labelled search over it.

The collection holds labelled passages (harmful / refusal / benign); the evaluation supplies its mixed
safety corpus (``evaluation.datasets.safety_corpus``: FAQ answers plus labelled PyRIT responses). It is a thin
layer over ``pipeline.index_corpus``: each passage becomes a one-passage document of its own corpus
(idempotent, resumable), then every point gets its passage's ``label`` in the payload.
``search_labelled`` returns hits with their labels (the app's live safety panel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from qdrant_client import QdrantClient, models

from encoder import Encoder

from .corpus import Corpus, SourceDoc
from .labels import LABELS, SAFETY_COLLECTION
from .pipeline import IndexReport, index_corpus
from .search import Hit, search
from .store import corpus_filter

SAFETY_CORPUS = "safety-passages"  # the ``corpus`` payload value of every passage


class LabelledPassage(Protocol):
    """What a passage needs (``evaluation.datasets.Passage`` fits): a unique id, text, label."""

    id: str
    text: str
    label: str


def passages_corpus(passages: Sequence[LabelledPassage]) -> Corpus:
    """The passages as plain-text documents (source = passage id); ValueError on an unknown label or repeated id."""
    bad = sorted({p.label for p in passages} - set(LABELS))
    if bad:
        raise ValueError(f"unknown safety labels {bad}; use {LABELS}")
    if len({p.id for p in passages}) != len(passages):
        raise ValueError("passage ids must be unique")
    # no title: neither the label nor the data set's file name may reach the embedded text
    return Corpus(SAFETY_CORPUS, docs=[SourceDoc(p.id, p.text, "text", "") for p in passages])


def set_labels(client: QdrantClient, collection: str, passages: Sequence[LabelledPassage], batch: int = 256) -> None:
    """Write each passage's ``label`` into the payload of its points (matched by source = passage id)."""
    by_label: dict[str, list[str]] = {}
    for p in passages:
        by_label.setdefault(p.label, []).append(p.id)
    for label, ids in by_label.items():
        for start in range(0, len(ids), batch):
            match = models.FieldCondition(key="source", match=models.MatchAny(any=ids[start : start + batch]))
            selector = models.Filter(must=[*corpus_filter(SAFETY_CORPUS).must, match])
            client.set_payload(collection, {"label": label}, points=selector, wait=True)


def index_safety(
    client: QdrantClient, encoder: Encoder, passages: Sequence[LabelledPassage], collection: str = SAFETY_COLLECTION, **kwargs
) -> IndexReport:
    """Make ``collection`` hold exactly these labelled passages (``kwargs`` go to ``index_corpus``)."""
    report = index_corpus(client, encoder, passages_corpus(passages), collection, **kwargs)
    set_labels(client, collection, passages)
    return report


def search_labelled(client: QdrantClient, encoder: Encoder, collection: str, query: str, k: int = 5) -> list[Hit]:
    """Top-k hits of a query, each with its safety ``label`` ('unlabelled' if its point has none)."""
    return [replace(h, label=h.label or "unlabelled") for h in search(client, encoder, collection, query, k).hits]
