"""``gensearch store migrate``: move an embedded store from qdrant-client's local mode to Qdrant Edge, in place.

Both engines live in the same folder (local mode: ``meta.json`` + ``collection/``; Edge: ``edge/``), so the copy
needs no second location. Per collection: create it in Edge with the same vectors, keyword vectors and metadata,
copy the points page by page (the local mode scrolls in id order; the next page's offset is saved after each
durable page, so a killed run goes on where it stopped; if the local collection changed since, the copy starts
afresh), then verify that both hold the same ids. Only when every
collection is verified is the local mode retired: ``meta.json`` first (from then on the store opens as Edge), then
its files, into ``local-mode-backup/`` (delete it once you are satisfied).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient
from tqdm.auto import tqdm

from .edge import EdgeClient
from .errors import StoreError
from .store import INDEXED_FIELDS, finish_writes, is_local_store, point_ids

log = logging.getLogger(__name__)

PROGRESS = "migrate.json"  # in the Edge collection's folder while its copy is under way
BACKUP = "local-mode-backup"


@dataclass(frozen=True)
class Migrated:
    collection: str
    points: int


def migrate_store(path: Path, batch_size: int = 512, show_progress: bool = True) -> list[Migrated]:
    """Copy every collection of the local-mode store at ``path`` into Qdrant Edge beside it, verify, retire the local
    files. Safe to re-run after a kill at any point; a store with nothing left to migrate is a no-op."""
    path = path.expanduser()
    if not is_local_store(path):
        _retire(path)  # a run killed between moving meta.json and the files
        return []
    done: list[Migrated] = []
    try:
        local = QdrantClient(path=str(path))
    except RuntimeError as exc:  # the local mode's lock
        raise StoreError(f"the embedded store {path} is in use by another process (the app, `gensearch watch`); stop it and re-run") from exc
    try:
        edge = EdgeClient(path)
        try:
            for name in sorted(c.name for c in local.get_collections().collections):
                done.append(Migrated(name, _copy(local, edge, name, batch_size, show_progress, path / "collection" / name / "storage.sqlite")))
        finally:
            edge.close()
    finally:
        local.close()
    _retire(path)
    return done


def _copy(local: QdrantClient, edge: EdgeClient, name: str, batch_size: int, show_progress: bool, storage: Path) -> int:
    info = local.get_collection(name)
    progress = edge.root / name / PROGRESS
    version = storage.stat().st_mtime_ns if storage.is_file() else 0  # the local collection as this copy read it
    if edge.collection_exists(name) and not progress.is_file():
        if point_ids(local, name) == point_ids(edge, name):
            return info.points_count or 0  # copied and verified by an earlier run
        raise StoreError(f"collection {name!r} exists in both the local mode and Edge with other points; nothing was changed. "
                         f"Move one away (`gensearch store snapshot -c {name}`) and re-run `gensearch store migrate`")
    state = json.loads(progress.read_text()) if progress.is_file() else None
    if state is not None and state.get("local_version") != version:  # indexed or watched since the killed run: copy afresh
        edge.delete_collection(name)
        state = None
    if state is None:
        params = info.config.params
        edge.create_collection(name, vectors_config=params.vectors, sparse_vectors_config=params.sparse_vectors or {},
                               metadata=info.config.metadata or {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for field, schema in INDEXED_FIELDS.items():
                edge.create_payload_index(name, field, schema)
        state = {"offset": None, "copied": False, "local_version": version}
        _save(progress, state)
    offset = state["offset"]
    with tqdm(total=info.points_count, desc=f"migrate {name}", unit="point", disable=not show_progress) as bar:
        bar.update(edge.count(name).count)
        while not state["copied"]:
            points, offset = local.scroll(name, limit=batch_size, offset=offset, with_payload=True, with_vectors=True)
            if points:
                edge.upsert(name, points=[_as_struct(p) for p in points])
                edge.flush()
                bar.update(len(points))
            state = {**state, "offset": offset, "copied": offset is None}
            _save(progress, state)
    differ = len(point_ids(local, name) ^ point_ids(edge, name))
    if differ:
        raise StoreError(f"migrating {name!r}: {differ} point ids differ between the local mode and Edge after the copy; "
                         f"nothing was retired. Delete {edge.root / name} and re-run `gensearch store migrate`")
    finish_writes(edge, name)
    progress.unlink()
    return edge.count(name).count


def _as_struct(record):
    from qdrant_client import models

    return models.PointStruct(id=record.id, vector=record.vector, payload=record.payload or {})


def _save(progress: Path, state: dict) -> None:
    tmp = progress.with_name(progress.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, progress)


def _retire(path: Path) -> None:
    """Move the local mode's files into ``local-mode-backup/``: meta.json first, so the store opens as Edge from then on."""
    backup = path / BACKUP
    for item in ("meta.json", "collection", ".lock"):
        if (path / item).exists():
            backup.mkdir(exist_ok=True)
            if (backup / item).exists():
                raise StoreError(f"{backup / item} is left from an earlier migration; delete {backup} and re-run `gensearch store migrate`")
            os.replace(path / item, backup / item)
