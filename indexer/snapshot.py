"""`gensearch snapshot` / `restore`: a collection to one file and back, on any store.

A snapshot is a tar file: ``collection.json`` (vector size and distance, keyword-vector modifier, the collection's
metadata: encoder identity, folder records) and ``points.jsonl.gz`` (every point: id, dense vector as base64
little-endian float32, keyword vector, payload), streamed through a temporary file, never held in memory whole. On
the embedded store it is written by the one client that holds the store's lock, so nothing writes meanwhile: a
consistent copy; on a server, stop writers (`gensearch watch`, index runs) first, or use Qdrant's own snapshots
(``POST /collections/{name}/snapshots``). A restore reads the whole file once before it touches anything (a damaged
file never replaces a collection, even with ``force``), creates the collection with the same configuration, upserts
every point and checks the count; it is refused over an existing collection unless ``force``.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from .sparse import SPARSE_VECTOR
from .store import INDEXED_FIELDS, StoreError, collection_info, finish_writes

FORMAT = "gensearch-snapshot"
VERSION = 1
PAGE = 512


def _points(client: QdrantClient, collection: str) -> Iterator[dict]:
    offset = None
    while True:
        points, offset = client.scroll(collection, limit=PAGE, offset=offset, with_payload=True, with_vectors=True)
        for p in points:
            vectors = p.vector if isinstance(p.vector, dict) else {"": p.vector}
            dense = np.asarray(vectors.get(""), dtype="<f4")
            sparse = vectors.get(SPARSE_VECTOR)
            yield {
                "id": str(p.id),
                "dense": base64.b64encode(dense.tobytes()).decode(),
                "sparse": {"indices": list(sparse.indices), "values": list(sparse.values)} if sparse is not None else None,
                "payload": p.payload or {},
            }
        if offset is None:
            return


def snapshot(client: QdrantClient, collection: str, path: str | Path, show_progress: bool = True) -> int:
    """Write ``collection`` to the tar file ``path``; returns the number of points written."""
    info = collection_info(client, collection)
    params = info.config.params
    dense = params.vectors
    sparse = (params.sparse_vectors or {}).get(SPARSE_VECTOR)
    header = {
        "format": FORMAT, "version": VERSION, "collection": collection, "points": info.points_count,
        "size": dense.size, "distance": dense.distance.value if hasattr(dense.distance, "value") else str(dense.distance),
        "sparse_modifier": "absent" if sparse is None else (sparse.modifier.value if sparse.modifier is not None else None),
        "metadata": info.config.metadata or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryFile() as points:
        with gzip.GzipFile(fileobj=points, mode="wb") as out:
            for point in tqdm(_points(client, collection), total=info.points_count, desc=f"snapshot {collection}", unit="point", disable=not show_progress):
                out.write((json.dumps(point, ensure_ascii=False) + "\n").encode())
                count += 1
        header["points"] = count
        partial = path.with_name(path.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(header, indent=2).encode()
            entry = tarfile.TarInfo("collection.json")
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
            entry = tarfile.TarInfo("points.jsonl.gz")
            entry.size = points.tell()
            points.seek(0)
            tar.addfile(entry, points)
        partial.replace(path)  # a killed snapshot leaves no file that looks complete
    return count


def read_header(path: str | Path) -> dict:
    """The ``collection.json`` of a snapshot file; StoreError if it is not one."""
    try:
        with tarfile.open(path, "r") as tar:
            header = json.loads(tar.extractfile("collection.json").read())
    except (OSError, tarfile.TarError, KeyError, ValueError, AttributeError) as exc:
        raise StoreError(f"{path} is not a gensearch snapshot ({type(exc).__name__}: {exc})") from exc
    if header.get("format") != FORMAT:
        raise StoreError(f"{path} is not a gensearch snapshot (format {header.get('format')!r})")
    return header


def restore(client: QdrantClient, path: str | Path, collection: str | None = None, force: bool = False, show_progress: bool = True) -> tuple[str, int]:
    """Recreate the snapshot's collection (or ``collection``) from ``path``; returns (name, points). StoreError if
    the collection exists (unless ``force``) or the count after restoring differs from the snapshot's."""
    header = read_header(path)
    name = collection or header["collection"]
    if client.collection_exists(name) and not force:
        raise StoreError(f"collection {name!r} already exists; restore into another name (-c NAME) or replace it (--force)")
    found = sum(1 for _ in _rows(path))  # the whole file is read before anything is replaced
    if found != header["points"]:
        raise StoreError(f"{path} holds {found} points, its header says {header['points']}: the file is damaged")
    if client.collection_exists(name):
        client.delete_collection(name)
    sparse = header["sparse_modifier"]
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=header["size"], distance=models.Distance(header["distance"])),
        sparse_vectors_config=None if sparse == "absent" else {SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier(sparse) if sparse else None)},
        metadata=header["metadata"],
    )
    with warnings.catch_warnings():  # the embedded store warns that it ignores payload indexes
        warnings.simplefilter("ignore", UserWarning)
        for field, schema in INDEXED_FIELDS.items():
            client.create_payload_index(name, field, schema)
    batch: list[models.PointStruct] = []
    with tqdm(total=header["points"], desc=f"restore {name}", unit="point", disable=not show_progress) as bar:
        for row in _rows(path):
            batch.append(_point(row, sparse != "absent"))
            if len(batch) == PAGE:
                client.upsert(name, points=batch, wait=True)
                bar.update(len(batch))
                batch = []
        if batch:
            client.upsert(name, points=batch, wait=True)
            bar.update(len(batch))
    finish_writes(client, name)
    restored = client.count(name, exact=True).count
    if restored != header["points"]:
        raise StoreError(f"restored {restored} points into {name!r}, the snapshot holds {header['points']}")
    return name, restored


def _rows(path: str | Path) -> Iterator[dict]:
    """The snapshot's points, streamed from the tar file; StoreError if the stream is damaged."""
    try:
        with tarfile.open(path, "r") as tar, gzip.GzipFile(fileobj=tar.extractfile("points.jsonl.gz")) as lines:
            for line in lines:
                yield json.loads(line)
    except (OSError, EOFError, zlib.error, tarfile.TarError, KeyError, ValueError) as exc:
        raise StoreError(f"{path} is damaged ({type(exc).__name__}: {exc}); nothing was restored") from exc


def _point(row: dict, has_sparse: bool) -> models.PointStruct:
    dense = np.frombuffer(base64.b64decode(row["dense"]), dtype="<f4").tolist()
    vector: list[float] | dict = dense
    if has_sparse:
        sparse = row["sparse"] or {"indices": [], "values": []}
        vector = {"": dense, SPARSE_VECTOR: models.SparseVector(indices=sparse["indices"], values=sparse["values"])}
    return models.PointStruct(id=row["id"], vector=vector, payload=row["payload"])
