"""Distributed indexing on Ray: the driver plans and writes, a pool of Ray actors embeds.

The same three steps as ``pipeline.index_corpus`` and the same guarantees (a run killed at any point,
re-run, ends with exactly the corpus's chunks: no duplicate, no loss):

1. **Plan** (driver, ``pipeline.plan_index``): chunk with the encoder's tokenizer, content-hash point
   ids, skip the ids already stored, sync document fields, list the stale ids.
2. **Embed** (Ray Data): the new chunks' texts, longest first, go through ``map_batches`` with a fixed
   ``ActorPoolStrategy`` of ``ChunkEmbedder`` actors. Each actor loads the encoder once, from the
   encoder name and the driver's settings passed to it (never from its own environment), checks it is
   the encoder the collection records, and embeds one batch at a time (``num_gpus`` when the cluster has
   GPUs: one encoder per GPU).
3. **Write** (driver only, ``pipeline.write_batches``): batches stream back (``iter_batches``) and are
   upserted as they come, each durable before it counts; then stale chunks are deleted. Workers never
   touch Qdrant, so the embedded store works too (its single writer is the driver) and a server sees one
   client.

``workers=N`` starts a local Ray (``ray.init(num_cpus=N)``, quiet, torch threads per actor
= cores // N); ``ray_address`` connects to an existing cluster whose nodes have gensearch and the
models installed. Ray is optional (``pip install 'gensearch[ray]'``; ``make install`` includes it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from encoder import Encoder
from encoder.settings import Settings

from .corpus import Corpus
from .embedding import embed_documents
from .identity import EncoderIdentity, identity_of
from .pipeline import IndexPlan, IndexReport, finish_index, plan_index, write_batches
from .store import EncoderMismatchError

log = logging.getLogger(__name__)

RAY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune")
CONNECT_TIMEOUT_S = 5.0


class DistributedError(RuntimeError):
    """Ray is missing, the cluster cannot be reached, or the worker pool cannot be placed on it."""


def import_ray():
    """The ``ray`` module with Ray Data, or a DistributedError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is the `data` extra of ray)
    except ImportError as exc:
        raise DistributedError(
            f"Ray is not installed ({exc}): `pip install 'gensearch[ray]'` (or `make install`) for `--workers` / `--ray-address`, "
            "or index in one process (drop those options)"
        ) from exc
    return ray


# ------------------------------------------------------------------------------------------- the actors


def worker_settings(settings: Settings) -> dict[str, Any]:
    """The settings an actor loads its encoder with: the driver's, minus credentials (workers never need them)."""
    return settings.model_dump(exclude={name for name in type(settings).model_fields if "api_key" in name})


class ChunkEmbedder:
    """A Ray Data actor: one encoder, loaded once, embedding batches of ``{"i", "text"}`` rows.

    Returns ``{"i", "vector" (float32, N x dim), "keywords" (JSON list of lens words per row), "node" (the Ray
    node that embedded the row)}``."""

    def __init__(self, encoder_name: str | None, adapter: str | None, settings: dict[str, Any], identity: dict, threads: int):
        import ray
        import torch

        from encoder import load_encoder

        torch.set_num_threads(max(1, threads))
        self.encoder = load_encoder(encoder_name, adapter=adapter, settings=Settings(**settings))
        found, wanted = identity_of(self.encoder), EncoderIdentity.from_dict(identity)
        if found != wanted:  # e.g. a node whose model cache or adapter differs from the driver's
            raise EncoderMismatchError(f"a Ray worker on {socket.gethostname()} loaded {found.label}, but the driver planned with {wanted.label}")
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, words = embed_documents(self.encoder, [str(t) for t in batch["text"]])
        return {
            "i": np.asarray(batch["i"], dtype=np.int64),
            "vector": np.asarray(vectors, dtype=np.float32),
            "keywords": np.array([json.dumps(w) for w in words], dtype=object),
            "node": np.array([self.node] * len(words), dtype=object),
        }


# ------------------------------------------------------------------------------------------- the cluster


@dataclass(frozen=True)
class WorkerPlan:
    """How many actors, what each reserves from Ray, and how many torch threads each uses."""

    actors: int
    num_cpus: float
    num_gpus: float
    threads: int


def plan_workers(workers: int | None, node_cpus: list[float], gpus: int, cores: int | None = None) -> WorkerPlan:
    """One encoder per worker: ``workers`` actors (default: one per GPU, else one per node).

    With GPUs each actor reserves a GPU (a share of one when there are more actors than GPUs). A local
    run (``cores``: the machine's cores; Ray was started with ``num_cpus=workers``) gives each actor one
    Ray CPU and ``cores // workers`` torch threads; on a CPU cluster each actor reserves the threads it uses."""
    if workers is not None and workers < 1:
        raise DistributedError(f"--workers must be at least 1 (got {workers})")
    total = sum(node_cpus)
    if gpus:
        actors = workers or gpus
        return WorkerPlan(actors, min(1.0, total / actors), 1 / math.ceil(actors / gpus), max(1, int((cores or total) // actors)))
    actors = workers or len(node_cpus)
    if cores is not None:
        return WorkerPlan(actors, 1.0, 0.0, max(1, cores // actors))
    threads = max(1, int(min(node_cpus) // math.ceil(actors / len(node_cpus))))
    if actors * threads > total:
        raise DistributedError(f"the Ray cluster has {total:g} CPUs on {len(node_cpus)} nodes: too few for {actors} workers (use fewer)")
    return WorkerPlan(actors, float(threads), 0.0, threads)


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast on a ``host:port`` / ``ray://host:port`` nobody listens on (``ray.init`` would retry for minutes)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise DistributedError(f"--ray-address {address!r} is not host:port, ray://host:port or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise DistributedError(
            f"cannot reach the Ray cluster at {address} ({exc}); start one (`ray start --head` on the head node) "
            "or use --workers N for a local Ray"
        ) from exc


@contextmanager
def ray_cluster(workers: int | None, address: str | None) -> Iterator[Any]:
    """Ray connected to ``address``, or a local Ray with ``workers`` CPUs; shut down after if started here.
    An already initialised Ray (the caller's) is used as it is."""
    ray = import_ray()
    quiet = {name: logging.getLogger(name).level for name in RAY_LOGGERS}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.ERROR)
    started = not ray.is_initialized()
    try:
        if started:
            common = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
            if address:
                check_reachable(address)
                try:
                    ray.init(address=address, **common)
                except ConnectionError as exc:
                    raise DistributedError(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
            else:
                ray.init(num_cpus=workers, include_dashboard=False, **common)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows one bar: chunks durably written
        context.print_on_execution_start = False
        yield ray
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def cluster_workers(ray, workers: int | None, settings: Settings, local: bool) -> WorkerPlan:
    """The worker plan for the connected cluster (GPUs unless the settings ask for the CPU)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    node_cpus = [float(n.get("Resources", {}).get("CPU", 0)) for n in nodes] or [1.0]
    gpus = 0 if settings.device.startswith("cpu") else int(ray.cluster_resources().get("GPU", 0))
    return plan_workers(workers, node_cpus, gpus, cores=local_cores() if local else None)


def embedded_batches(
    ray, plan: IndexPlan, encoder_name: str | None, adapter: str | None, settings: Settings, pool: WorkerPlan, batch_size: int,
    nodes: set[str] | None = None,
) -> Iterator[list[models.PointStruct]]:
    """The new chunks embedded by the actor pool, streamed back as batches of points (any order); the ids of
    the Ray nodes that embedded them are added to ``nodes``."""
    rows = [{"i": i, "text": plan.texts[i]} for i in plan.order]  # longest first: least padding per batch
    blocks = max(1, math.ceil(len(rows) / batch_size))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        ChunkEmbedder,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(pool.actors, blocks)),
        num_cpus=pool.num_cpus,
        num_gpus=pool.num_gpus,
        fn_constructor_kwargs={
            "encoder_name": encoder_name,
            "adapter": adapter,
            "settings": worker_settings(settings),
            "identity": plan.identity.to_dict(),
            "threads": pool.threads,
        },
        udf_modifying_row_count=False,
    )
    try:
        for batch in dataset.iter_batches(batch_size=batch_size, batch_format="numpy"):
            if nodes is not None:
                nodes.update(str(n) for n in batch["node"])
            yield plan.points([int(i) for i in batch["i"]], batch["vector"], [json.loads(k) for k in batch["keywords"]])
    except ray.exceptions.RayError as exc:  # an actor could not load its encoder, or a batch failed for good
        raise DistributedError(f"a Ray worker failed: {root_cause(exc)} (the chunks written so far are kept; re-run to resume)") from exc


def root_cause(exc: BaseException) -> str:
    """The last ``SomeError: message`` line of a Ray error (its traceback text ends with the worker's exception)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b.*:", line)]
    return causes[-1] if causes else (lines[-1] if lines else type(exc).__name__)


def index_corpus_distributed(
    client: QdrantClient,
    encoder_name: str | None,
    corpus: Corpus,
    collection: str,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    adapter: str | Path | None = None,
    settings: Settings,
    planner: Encoder | None = None,
    batch_size: int = 64,
    recreate: bool = False,
    show_progress: bool = True,
    on_batch: Callable[[int, int], None] | None = None,
    allow_widen: bool = False,
) -> IndexReport:
    """``index_corpus`` with the embedding done by Ray actors: ``workers`` on a local Ray, or on the
    cluster at ``ray_address`` (``workers`` actors, default one per GPU or node).

    ``encoder_name`` / ``adapter`` / ``settings`` are what every actor loads (``load_encoder``).
    ``planner`` is a loaded copy of that encoder for the driver's chunking and identity (default: loaded
    here on the CPU, and dropped before embedding starts). Ray is started only when there is something
    to embed, so a re-run with nothing new is as fast as the single-process one."""
    if workers is None and not ray_address:
        raise DistributedError("give workers (a local Ray) or ray_address (an existing cluster)")
    if workers is not None and workers < 1:
        raise DistributedError(f"--workers must be at least 1 (got {workers})")
    ray = import_ray()  # before loading anything
    if ray_address and not ray.is_initialized():
        check_reachable(ray_address)
    adapter = str(adapter) if adapter else None
    started = time.perf_counter()
    if planner is None:
        planner = load_planner(encoder_name, adapter, settings)
    plan = plan_index(
        client, planner, corpus, collection, settings=settings, recreate=recreate, show_progress=show_progress, allow_widen=allow_widen
    )
    del planner  # the driver only writes from here on
    timings: dict[str, float] = {"embed": 0.0}
    pool, nodes = None, set()
    if plan.new:
        t0 = time.perf_counter()
        with ray_cluster(workers, ray_address) as ray:
            pool = cluster_workers(ray, workers, settings, local=not ray_address)
            t1 = time.perf_counter()
            timings["ray_start"] = t1 - t0
            log.info("embedding %d chunks on %d Ray workers (%g CPU, %g GPU, %d threads each)", len(plan.new), pool.actors, pool.num_cpus, pool.num_gpus, pool.threads)
            batches = embedded_batches(ray, plan, encoder_name, adapter, settings, pool, batch_size, nodes)
            write_batches(client, collection, batches, len(plan.new), show_progress=show_progress, on_batch=on_batch)
            timings["embed"] = time.perf_counter() - t1  # embed + write, overlapped (wall time)
    report = finish_index(client, collection, corpus, plan, started, timings)
    if pool is not None:
        report.timings.update(workers=float(pool.actors), nodes=float(len(nodes)))  # nodes: those that embedded a chunk
    return report


def load_planner(encoder_name: str | None, adapter: str | None, settings: Settings) -> Encoder:
    """The driver's copy of the encoder (tokenizer and identity only): on the CPU, leaving GPUs to the actors."""
    from encoder import load_encoder

    eager = settings.model_copy(update={"encode_path": "eager"})  # it never encodes: no packed copy
    return load_encoder(encoder_name, adapter=adapter, settings=eager, device="cpu")
