"""`gensearch store check`: is every collection of the store usable, labelled and complete?

Opening the store already catches a damaged embedded store (``store.open_client``). Then, per collection:
built by gensearch with a recorded encoder, vectors of the recorded size, keyword vectors, every point
labelled with readers (unlabelled ones count as public), no chunks left hidden by an interrupted run, and
every recorded folder still on disk. Each finding says what to run to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qdrant_client import QdrantClient, models

from .corpora import corpus_records
from .pipeline import HIDDEN
from .store import FORMAT, StoreError, collection_identity, has_sparse_vectors

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    collection: str
    level: Level
    message: str

    def line(self) -> str:
        return f"{self.level:<7} {self.collection}: {self.message}"


def check_collection(client: QdrantClient, name: str) -> list[Finding]:
    """What is wrong (or fine) with one collection."""
    meta = client.get_collection(name).config.metadata or {}
    if meta.get("format") != FORMAT:
        return [Finding(name, "ok", "not a gensearch collection (left alone)")]
    try:
        identity = collection_identity(client, name)
    except (StoreError, KeyError, TypeError, ValueError) as exc:
        return [Finding(name, "error", f"its recorded encoder is unreadable ({exc}); rebuild it with `gensearch index ... --recreate -c {name}`")]
    found: list[Finding] = []
    size = client.get_collection(name).config.params.vectors
    size = getattr(size, "size", None)
    if size is not None and size != identity.dim:
        found.append(Finding(name, "error", f"vectors have {size} dimensions but its encoder {identity.label} makes {identity.dim}; rebuild it (`--recreate`)"))
    total = client.count(name, exact=True).count
    unlabelled = client.count(name, count_filter=models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="readers"))]), exact=True).count
    hidden = client.count(name, count_filter=models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=HIDDEN))]), exact=True).count
    if unlabelled:
        found.append(Finding(name, "warning", f"{unlabelled} of {total} chunks have no readers and count as public (indexed before permissions); "
                                               "run `gensearch index` on their folder to label them"))
    if hidden:
        found.append(Finding(name, "warning", f"{hidden} stale chunks are hidden but not deleted (an index run was interrupted); "
                                               "re-run `gensearch index` on their folder to finish it"))
    if not has_sparse_vectors(client, name):
        found.append(Finding(name, "warning", f"no keyword vectors (made before hybrid search): keyword and hybrid search need `--recreate -c {name}`"))
    for root in corpus_records(client, name):
        if not Path(root).is_dir():
            found.append(Finding(name, "warning", f"its folder {root} is gone; its chunks stay searchable until the collection is rebuilt"))
    if not any(f.level != "ok" for f in found):
        found.append(Finding(name, "ok", f"{total} chunks of {identity.label}"))
    return found


def check_store(client: QdrantClient) -> list[Finding]:
    """Findings for every collection in the store, by name."""
    names = sorted(c.name for c in client.get_collections().collections)
    return [finding for name in names for finding in check_collection(client, name)]
