"""A collection's own query adapter: what `gensearch adapt` reads from a collection and records in it.

The collection's encoder identity keeps the adapter folder its queries are embedded with (``adapter_path``), so
every read path (``indexer.identity.load_encoder_for``: CLI, app, retriever, RAG, service) uses an adapted
collection's adapter with nothing to configure; ``adapted`` in the metadata says when, from what and how it did.
Only collections of the fused mode (the default) can be adapted: their stored vectors are the teacher's and do not
depend on the adapter, so nothing is re-embedded.

Permissions fail closed: the adapter serves every caller of the collection, so by default it learns only from chunks
everyone may read (the anonymous caller's filter); ``restricted=True`` (``--include-restricted``) is the owner's
explicit choice to let questions about restricted documents shape it.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path

from qdrant_client import QdrantClient

from .errors import StoreError
from .filters import SearchFilter
from .store import collection_identity, collection_info

ADAPTED_KEY = "adapted"
FUSED = "llm2vec-gen-fused"


def check_adaptable(client: QdrantClient, collection: str) -> None:
    """StoreError unless the collection is of the fused mode (the default): its documents are teacher vectors, and the
    query map acts on its fused query vectors."""
    identity = collection_identity(client, collection)
    if identity.encoder != FUSED:
        raise StoreError(f"collection {collection!r} was built with {identity.label}: only collections of the fused mode "
                         "(documents embedded by the teacher, the default) can be adapted; re-index it with --encoder llm2vec-gen-fused")


def sample_chunks(client: QdrantClient, collection: str, n: int | None, seed: int = 0, restricted: bool = False,
                  page: int = 256) -> list[tuple[str, str, list[float]]]:
    """(point id, chunk text, stored dense vector) of a seeded sample of at most ``n`` chunks (all with None) that
    everyone may read (every chunk with ``restricted``), in a seeded random order."""
    rows: list[tuple[str, str, list[float]]] = []
    offset = None
    readable = None if restricted else SearchFilter().to_qdrant()
    while True:
        points, offset = client.scroll(collection, scroll_filter=readable, limit=page, offset=offset, with_payload=["text"], with_vectors=True)
        for p in points:
            vector = p.vector.get("") if isinstance(p.vector, dict) else p.vector
            text = (p.payload or {}).get("text")
            if text and vector is not None:
                rows.append((str(p.id), text, list(vector)))
        if offset is None:
            break
    rows.sort(key=lambda r: r[0])
    return random.Random(seed).sample(rows, len(rows) if n is None else min(n, len(rows)))  # seeded order: any prefix is a sample


def adaptation(client: QdrantClient, collection: str) -> dict | None:
    """The collection's ``adapted`` record (None: never adapted, or undone)."""
    return (collection_info(client, collection).config.metadata or {}).get(ADAPTED_KEY) or None


def record_adapter(client: QdrantClient, collection: str, folder: Path, report: dict) -> None:
    """Make ``folder`` the adapter of the collection's queries and keep what came before, for ``undo_adapter``."""
    identity = collection_identity(client, collection)
    previous = adaptation(client, collection)
    record = {"adapter": str(Path(folder).resolve()), "at": time.time(), "report": report,
              "previous_adapter_path": previous["previous_adapter_path"] if previous else identity.adapter_path}
    client.update_collection(collection, metadata={"encoder": replace(identity, adapter_path=str(Path(folder).resolve())).to_dict(),
                                                   ADAPTED_KEY: record})


def undo_adapter(client: QdrantClient, collection: str) -> str | None:
    """Give the collection's queries back the adapter they had before `gensearch adapt`; returns the adapter folder
    that was in use (None: the collection was not adapted)."""
    record = adaptation(client, collection)
    if record is None:
        return None
    identity = collection_identity(client, collection)
    client.update_collection(collection, metadata={"encoder": replace(identity, adapter_path=record["previous_adapter_path"]).to_dict(),
                                                   ADAPTED_KEY: {}})
    return record["adapter"]
