"""Qdrant Edge, the embedded engine: Qdrant's own engine in this process, behind the qdrant-client calls we make.

``qdrant-edge-py`` holds one *shard* (segments, WAL, HNSW and payload indexes) and no notion of collections.
``EdgeClient`` adds them and answers the part of ``QdrantClient``'s API that gensearch uses, with qdrant-client's
own models in and out, so ``indexer.store``'s callers never know which engine they talk to. A store folder::

    <path>/edge/.lock                        held while a process has the store open (one process at a time)
    <path>/edge/<collection>/collection.json dense size, keyword vectors' IDF modifier, metadata (encoder, folder records)
    <path>/edge/<collection>/shard/          the EdgeShard

What Edge does not have is done here: collections and their metadata; grouping hits by document
(``query_points_groups``: candidates widen until ``limit`` documents are found). Vectors are indexed (HNSW) by
``optimize``, which ``indexer.store.finish_writes`` calls after an indexing run; until then search is exact.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from qdrant_client import models
from qdrant_client.http import models as rest  # qdrant_client.models.QueryResponse is fastembed's, not the API's

from .errors import StoreError

log = logging.getLogger(__name__)

EDGE_DIR = "edge"
CONFIG_FILE = "collection.json"
SHARD_DIR = "shard"
MAX_GROUP_ROUNDS = 4  # grouping looks at most limit * group_size * 4**4 candidates (1,280 for 5 documents)
RRF_K = 2  # qdrant-client's and Qdrant's default ranking constant
HNSW_EF = 128  # search breadth; with ACORN (filtered search explores two hops) recall@10 holds under a permission filter
ACORN = qe.AcornSearchParams(enable=True)  # without it recall@10 was 0.72 at 20k points and hnsw_ef 256 (docs/scaling.md)
SCHEMAS = {
    models.PayloadSchemaType.KEYWORD: qe.PayloadSchemaType.Keyword,
    models.PayloadSchemaType.FLOAT: qe.PayloadSchemaType.Float,
    models.PayloadSchemaType.INTEGER: qe.PayloadSchemaType.Integer,
    models.PayloadSchemaType.BOOL: qe.PayloadSchemaType.Bool,
}


class EdgeStoreError(StoreError):
    """The Edge store cannot be opened or does not support a request."""


class EdgeInUseError(EdgeStoreError):
    """Another process has the store open."""


# ----------------------------------------------------------------------------- conversions (pure)


def edge_filter(flt: models.Filter | None) -> qe.Filter | None:
    """A qdrant-client filter as an Edge filter (the conditions gensearch builds; others are an error)."""
    if flt is None:
        return None

    def many(conditions) -> list | None:
        if conditions is None:
            return None
        conditions = conditions if isinstance(conditions, list) else [conditions]
        return [edge_condition(c) for c in conditions]

    min_should = None
    if flt.min_should is not None:
        min_should = qe.MinShould(conditions=many(flt.min_should.conditions), min_count=flt.min_should.min_count)
    return qe.Filter(must=many(flt.must), should=many(flt.should), must_not=many(flt.must_not), min_should=min_should)


def edge_condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return edge_filter(condition)
    if isinstance(condition, models.IsEmptyCondition):
        return qe.IsEmptyCondition(key=condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return qe.IsNullCondition(key=condition.is_null.key)
    if isinstance(condition, models.HasIdCondition):
        return qe.HasIdCondition(point_ids={edge_id(i) for i in condition.has_id})
    if isinstance(condition, models.FieldCondition):
        if condition.match is not None:
            match = condition.match
            if isinstance(match, models.MatchValue):
                return qe.FieldCondition(key=condition.key, match=qe.MatchValue(match.value))
            if isinstance(match, models.MatchAny):
                return qe.FieldCondition(key=condition.key, match=qe.MatchAny(list(match.any)))
            if isinstance(match, models.MatchExcept):
                return qe.FieldCondition(key=condition.key, match=qe.MatchExcept(list(match.except_)))
        elif isinstance(condition.range, models.Range):
            r = condition.range
            return qe.FieldCondition(key=condition.key, range=qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
    raise EdgeStoreError(f"the embedded Edge store does not support this filter condition: {condition!r}")


def edge_vector(vector: Any) -> Any:
    """A qdrant-client point or query vector as Edge's: unnamed dense -> {"": ...}, sparse vectors converted."""
    if isinstance(vector, models.SparseVector):
        return qe.SparseVector(list(vector.indices), list(vector.values))
    if isinstance(vector, dict):
        return {name: edge_vector(v) for name, v in vector.items()}
    return [float(x) for x in vector]


def client_vector(vector: Any) -> Any:
    """Edge's stored vectors as qdrant-client's: one unnamed dense vector alone is a list."""
    if vector is None:
        return None
    if not isinstance(vector, dict):
        return list(vector)
    out = {name: models.SparseVector(indices=list(v.indices), values=list(v.values)) if isinstance(v, qe.SparseVector) else list(v)
           for name, v in vector.items()}
    return out[""] if set(out) == {""} else out


def edge_id(point_id: Any) -> int | str:
    """Point ids are unsigned integers or UUIDs (as strings) in both APIs."""
    return point_id if isinstance(point_id, int) else str(point_id)


def client_id(point_id: Any) -> int | str:
    return point_id if isinstance(point_id, int) else str(point_id)


def point_ids_of(selector: Any) -> list[int | str] | None:
    """Ids named by a points selector (a list, or PointIdsList), or None for a filter selector."""
    if isinstance(selector, models.PointIdsList):
        return [edge_id(i) for i in selector.points]
    if isinstance(selector, (list, tuple)):
        return [edge_id(i) for i in selector]
    return None


def filter_of(selector: Any) -> models.Filter | None:
    if isinstance(selector, models.FilterSelector):
        return selector.filter
    return selector if isinstance(selector, models.Filter) else None


# ----------------------------------------------------------------------------- the client


class EdgeClient:
    """The QdrantClient calls gensearch makes, on Qdrant Edge shards in ``path/edge`` (one per collection)."""

    def __init__(self, path: str | Path):
        self.root = Path(path) / EDGE_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / ".lock", "a+")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock.close()
            raise EdgeInUseError(f"the embedded store {path} is open in another process") from exc
        self._shards: dict[str, qe.EdgeShard] = {}
        self._loading = threading.Lock()  # the app shares one client between its sessions' threads
        for trash in self.root.glob(".deleted-*"):  # what a delete killed half-way left
            shutil.rmtree(trash, ignore_errors=True)
        for config in self._configs():  # a lost shard is refused now, not searched as empty later
            segments = config.parent / SHARD_DIR / "segments"
            if not segments.is_dir() or not any(segments.iterdir()):
                self.close()
                name = config.parent.name
                raise EdgeStoreError(f"collection {name!r} in the embedded store {path} has lost its data ({segments} is missing or empty); "
                                     f"restore it (`gensearch store restore`), or re-index it (`gensearch index ... --recreate -c {name}`)")

    # -- collections

    def _configs(self) -> list[Path]:
        return sorted(p for p in self.root.glob(f"*/{CONFIG_FILE}") if not p.parent.name.startswith("."))

    def _folder(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise EdgeStoreError(f"{name!r} is not a valid collection name")
        return self.root / name

    def _config(self, name: str) -> dict:
        path = self._folder(name) / CONFIG_FILE
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ValueError(f"Collection {name} not found") from exc
        except (OSError, ValueError) as exc:
            raise EdgeStoreError(f"collection {name!r}: {path} is damaged ({exc})") from exc

    def _write_config(self, name: str, config: dict) -> None:
        path = self._folder(name) / CONFIG_FILE
        tmp = path.with_name(f".{CONFIG_FILE}.{uuid.uuid4().hex}")
        with open(tmp, "w") as f:  # the only copy of the encoder's identity and the folder records: durable before it replaces
            f.write(json.dumps(config, indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _shard(self, name: str) -> qe.EdgeShard:
        with self._loading:
            return self._load_shard(name)

    def _load_shard(self, name: str) -> qe.EdgeShard:
        if name not in self._shards:
            self._config(name)  # ValueError if the collection does not exist
            shard_dir = self._folder(name) / SHARD_DIR
            try:
                self._shards[name] = qe.EdgeShard.load(str(shard_dir))
            except Exception as exc:  # the bindings raise plain Exception with the engine's message
                raise EdgeStoreError(f"collection {name!r}: its Edge shard {shard_dir} is damaged ({exc}); restore it "
                                     f"(`gensearch store restore`), or re-index it (`gensearch index ... --recreate -c {name}`)") from exc
        return self._shards[name]

    def collection_exists(self, collection_name: str) -> bool:
        return (self._folder(collection_name) / CONFIG_FILE).is_file()

    def get_collections(self) -> models.CollectionsResponse:
        names = [p.parent.name for p in self._configs()]
        return models.CollectionsResponse(collections=[models.CollectionDescription(name=n) for n in names])

    def create_collection(
        self, collection_name: str, vectors_config: models.VectorParams, sparse_vectors_config: dict | None = None,
        metadata: dict | None = None, **_: Any,
    ) -> bool:
        if self.collection_exists(collection_name):
            raise ValueError(f"Collection {collection_name} already exists")
        folder = self._folder(collection_name)
        shutil.rmtree(folder, ignore_errors=True)  # what a run killed between the shard and its config left
        sparse = {name: (p.modifier == models.Modifier.IDF) for name, p in (sparse_vectors_config or {}).items()}
        distance = {models.Distance.COSINE: qe.Distance.Cosine, models.Distance.DOT: qe.Distance.Dot,
                    models.Distance.EUCLID: qe.Distance.Euclid}[vectors_config.distance]
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=vectors_config.size, distance=distance),
            sparse_vectors={n: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if idf else None) for n, idf in sparse.items()},
        )
        self._shards[collection_name] = qe.EdgeShard.create(str(folder / SHARD_DIR), config)
        self._write_config(collection_name, {"size": vectors_config.size, "distance": vectors_config.distance.value, "sparse": sparse,
                                             "metadata": metadata or {}})
        return True

    def delete_collection(self, collection_name: str) -> bool:
        shard = self._shards.pop(collection_name, None)
        if shard is not None:
            shard.close()
        folder = self._folder(collection_name)
        if not folder.exists():
            return False
        trash = self.root / f".deleted-{uuid.uuid4().hex}"
        os.replace(folder, trash)  # gone at once; the files after
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def get_collection(self, collection_name: str) -> models.CollectionInfo:
        config = self._config(collection_name)
        info = self._shard(collection_name).info()
        sparse = {n: models.SparseVectorParams(modifier=models.Modifier.IDF if idf else models.Modifier.NONE)
                  for n, idf in config["sparse"].items()}
        params = models.CollectionParams(vectors=models.VectorParams(size=config["size"], distance=models.Distance(config["distance"])),
                                         sparse_vectors=sparse or None)
        return models.CollectionInfo.model_construct(
            status=models.CollectionStatus.GREEN, optimizer_status=models.OptimizersStatusOneOf.OK,
            points_count=info.points_count, indexed_vectors_count=info.indexed_vectors_count, segments_count=info.segments_count,
            config=models.CollectionConfig.model_construct(params=params, metadata=config["metadata"]),
            payload_schema={name: models.PayloadIndexInfo.model_construct(data_type=None, points=i.points) for name, i in info.payload_schema.items()},
        )

    def update_collection(self, collection_name: str, metadata: dict | None = None, **_: Any) -> bool:
        """Metadata keys are merged into the stored ones (as Qdrant does)."""
        config = self._config(collection_name)
        config["metadata"] = {**config["metadata"], **json.loads(json.dumps(metadata or {}))}
        self._write_config(collection_name, config)
        return True

    def create_payload_index(self, collection_name: str, field_name: str, field_schema: Any, **_: Any) -> None:
        shard = self._shard(collection_name)
        if field_name not in shard.info().payload_schema:
            shard.update(qe.UpdateOperation.create_field_index(field_name, SCHEMAS[models.PayloadSchemaType(field_schema)]))

    # -- points

    def upsert(self, collection_name: str, points: Sequence[models.PointStruct], wait: bool = True, **_: Any) -> None:
        self._shard(collection_name).update(qe.UpdateOperation.upsert_points(
            [qe.Point(id=edge_id(p.id), vector=edge_vector(p.vector if isinstance(p.vector, dict) else {"": p.vector}), payload=p.payload or {})
             for p in points]))

    def delete(self, collection_name: str, points_selector: Any, wait: bool = True, **_: Any) -> None:
        ids = point_ids_of(points_selector)
        shard = self._shard(collection_name)
        if ids is not None:
            shard.update(qe.UpdateOperation.delete_points(ids))
        else:
            shard.update(qe.UpdateOperation.delete_points_by_filter(edge_filter(filter_of(points_selector))))

    def set_payload(self, collection_name: str, payload: dict, points: Any = None, wait: bool = True, key: str | None = None, **_: Any) -> None:
        if key is not None:
            raise EdgeStoreError("the Edge store does not set nested payload keys (key=...)")
        ids = point_ids_of(points)
        shard = self._shard(collection_name)
        if ids is not None:
            shard.update(qe.UpdateOperation.set_payload(ids, payload))
        else:
            shard.update(qe.UpdateOperation.set_payload_by_filter(edge_filter(filter_of(points)), payload))

    def delete_payload(self, collection_name: str, keys: Sequence[str], points: Any, wait: bool = True, **_: Any) -> None:
        ids = point_ids_of(points)
        shard = self._shard(collection_name)
        if ids is not None:
            shard.update(qe.UpdateOperation.delete_payload(ids, list(keys)))
        else:
            shard.update(qe.UpdateOperation.delete_payload_by_filter(edge_filter(filter_of(points)), list(keys)))

    def count(self, collection_name: str, count_filter: models.Filter | None = None, exact: bool = True, **_: Any) -> models.CountResult:
        return models.CountResult(count=self._shard(collection_name).count(qe.CountRequest(filter=edge_filter(count_filter), exact=True)))

    def scroll(
        self, collection_name: str, scroll_filter: models.Filter | None = None, limit: int = 10, offset: Any = None,
        with_payload: bool = True, with_vectors: bool = False, **_: Any,
    ) -> tuple[list[models.Record], str | None]:
        records, next_offset = self._shard(collection_name).scroll(qe.ScrollRequest(
            offset=edge_id(offset) if offset is not None else None, limit=limit, filter=edge_filter(scroll_filter),
            with_payload=with_payload, with_vector=with_vectors))
        out = [models.Record(id=client_id(r.id), payload=r.payload if with_payload else None, vector=client_vector(r.vector) if with_vectors else None)
               for r in records]
        return out, (client_id(next_offset) if next_offset is not None else None)

    def retrieve(self, collection_name: str, ids: Iterable[Any], with_payload: bool = True, with_vectors: bool = False, **_: Any) -> list[models.Record]:
        records = self._shard(collection_name).retrieve([edge_id(i) for i in ids], with_payload, with_vectors)
        return [models.Record(id=client_id(r.id), payload=r.payload, vector=client_vector(r.vector) if with_vectors else None) for r in records]

    # -- search

    def _stage(self, query: Any, using: str | None, flt: models.Filter | None) -> tuple[Any, qe.Filter | None]:
        if isinstance(query, models.FusionQuery):
            if query.fusion != models.Fusion.RRF:
                raise EdgeStoreError(f"the embedded Edge store does not support fusion {query.fusion}")
            return qe.Fusion.Rrf(k=RRF_K), edge_filter(flt)
        if isinstance(query, models.NearestQuery):
            query = query.nearest
        return qe.Query.Nearest(edge_vector(query), using=using or None), edge_filter(flt)

    def _request(self, query: Any, using: str | None, prefetch: Any, query_filter: models.Filter | None, limit: int,
                 with_payload: Any, exact: bool = False) -> qe.QueryRequest:
        stages = []
        for p in (prefetch if isinstance(prefetch, list) else [prefetch] if prefetch is not None else []):
            q, f = self._stage(p.query, p.using, p.filter)
            stages.append(qe.Prefetch(limit=p.limit or limit, query=q, filter=f, params=qe.SearchParams(hnsw_ef=HNSW_EF, exact=exact, acorn=ACORN)))
        q, f = self._stage(query, using, query_filter)
        return qe.QueryRequest(limit=limit, query=q, prefetches=stages or None, filter=f, with_payload=with_payload,
                               params=qe.SearchParams(hnsw_ef=HNSW_EF, exact=exact, acorn=ACORN))

    def query_points(
        self, collection_name: str, query: Any = None, using: str | None = None, prefetch: Any = None,
        query_filter: models.Filter | None = None, limit: int = 10, with_payload: Any = True,
        search_params: models.SearchParams | None = None, score_threshold: float | None = None, offset: int | None = None, **_: Any,
    ) -> rest.QueryResponse:
        if score_threshold is not None or offset:
            raise EdgeStoreError("the Edge store facade does not take score_threshold or offset (gensearch never sends them)")
        exact = bool(search_params and search_params.exact)
        hits = self._shard(collection_name).query(self._request(query, using, prefetch, query_filter, limit, with_payload, exact))
        return rest.QueryResponse(points=[models.ScoredPoint(id=client_id(h.id), version=h.version, score=h.score, payload=h.payload)
                                            for h in hits])

    def query_points_groups(
        self, collection_name: str, group_by: str, query: Any = None, using: str | None = None, prefetch: Any = None,
        query_filter: models.Filter | None = None, limit: int = 10, group_size: int = 1, with_payload: Any = True,
        search_params: models.SearchParams | None = None, **_: Any,
    ) -> models.GroupsResult:
        """Each group's best ``group_size`` hits, ``limit`` groups, in rank order: candidates widen (x4, at most
        ``MAX_GROUP_ROUNDS`` times) until ``limit`` groups are full or the collection has no more."""
        candidates = limit * group_size * 4
        for _round in range(MAX_GROUP_ROUNDS):
            hits = self.query_points(collection_name, query, using, prefetch, query_filter, candidates, True, search_params).points
            groups: dict[Any, list[models.ScoredPoint]] = {}
            for hit in hits:
                key = (hit.payload or {}).get(group_by)
                if key is None or isinstance(key, (list, dict)):
                    continue
                if len(groups.get(key, [])) < group_size:
                    groups.setdefault(key, []).append(hit)
            full = sum(len(g) == group_size for g in groups.values())
            if full >= limit or len(hits) < candidates:
                break
            candidates *= 4  # a few documents fill the candidates with their chunks: look further
        picked = list(groups.items())[:limit]
        if not with_payload:
            picked = [(key, [h.model_copy(update={"payload": None}) for h in g]) for key, g in picked]
        return models.GroupsResult(groups=[models.PointGroup(id=key, hits=g) for key, g in picked])

    # -- lifecycle

    def optimize(self, collection_name: str) -> bool:
        """Build the HNSW index and merge segments (blocking); True if anything changed."""
        return self._shard(collection_name).optimize()

    def flush(self) -> None:
        for shard in self._shards.values():
            shard.flush()

    def close(self, **_: Any) -> None:
        try:
            for name, shard in list(self._shards.items()):
                try:
                    shard.flush()
                except Exception:  # durable anyway: every update went through the WAL
                    log.exception("flushing collection %s", name)
                finally:
                    shard.close()
        finally:
            self._shards.clear()
            if not self._lock.closed:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
                self._lock.close()

    def __repr__(self) -> str:
        return f"EdgeClient(path={str(self.root.parent)!r})"
