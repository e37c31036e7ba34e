"""Prometheus metrics for `gensearch serve`, at ``GET /metrics`` (behind the API keys like every route but /health).

HTTP requests, errors (by status) and latency histograms per route come from prometheus-fastapi-instrumentator;
the batcher adds what only it knows: the queue depth (items admitted, not answered), the size of each batch the
model ran, and the items embedded. Each app has its own registry, so several apps in one process never clash.
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .batcher import MicroBatcher

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class BatcherMetrics:
    """The batcher's gauges and histograms in ``registry``; ``observe_batch`` is the batcher's per-batch hook."""

    def __init__(self, registry: CollectorRegistry):
        self.queue = Gauge("gensearch_queue_items", "Items admitted and not yet answered (waiting or running).", registry=registry)
        self.batch = Histogram("gensearch_batch_size", "Items per batch the model ran.", buckets=BATCH_BUCKETS, registry=registry)
        self.items = Counter("gensearch_items", "Items the model processed (embedded, decoded or read by the lens).", registry=registry)

    def watch(self, batcher: MicroBatcher) -> None:
        self.queue.set_function(lambda: batcher.in_flight)
        batcher.on_batch = self.observe_batch

    def observe_batch(self, size: int) -> None:
        self.batch.observe(size)
        self.items.inc(size)


def instrument(app: FastAPI) -> BatcherMetrics:
    """Add request metrics and ``GET /metrics`` to ``app``; returns the batcher metrics to ``watch`` its batcher."""
    from prometheus_fastapi_instrumentator import Instrumentator

    registry = CollectorRegistry()
    Instrumentator(registry=registry, excluded_handlers=["/metrics"]).instrument(app).expose(app, include_in_schema=False)
    return BatcherMetrics(registry)
