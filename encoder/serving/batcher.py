"""Dynamic micro-batching: coalesce concurrent requests into model batches, run them on ONE thread.

    batcher = MicroBatcher(run_batch, max_batch_size=32, max_wait_ms=5, max_queue=512)
    batcher.start()                                              # inside a running event loop
    rows = await batcher.submit(("embed", "query"), ["a", "b"])  # one result per item, in order
    await batcher.stop()

Requests with the same ``key`` (operation + parameters) share a batch. ``run_batch(key, items)`` runs in a
single worker thread: the model is loaded once and never used re-entrantly, and the event loop stays free
while it runs. Requests that arrive meanwhile queue up and become the next batch, so batches grow with load;
when the queue is idle the first request waits at most ``max_wait_ms`` for company.

The queue is bounded in items (waiting or running): when full, ``submit`` raises ``QueueFullError`` at once
(the API answers 429) instead of growing. A failing batch of several requests is retried request by request,
so one bad request fails alone and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RunBatch = Callable[[Hashable, list[Any]], Sequence[Any]]


class QueueFullError(RuntimeError):
    """The bounded queue cannot take this request now (overload): retry later."""


class BatcherClosedError(RuntimeError):
    """The batcher is not running (not started yet, or shutting down)."""


@dataclass(eq=False)
class _Job:
    key: Hashable
    items: list[Any]
    future: asyncio.Future


class MicroBatcher:
    """Collects ``submit`` calls into batches of at most ``max_batch_size`` items per ``key``."""

    def __init__(self, run_batch: RunBatch, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 512):
        if max_batch_size < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("need max_batch_size >= 1, max_queue >= 1 and max_wait_ms >= 0")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gensearch-model")  # the model thread
        self.batch_sizes: deque[int] = deque(maxlen=10_000)  # items per batch run, most recent last
        self.batches_run = 0
        self.on_batch: Callable[[int], None] | None = None  # called with each batch's size (metrics)
        self._pending: deque[_Job] = deque()
        self._running: list[_Job] = []
        self._in_flight = 0  # items admitted and not answered yet (waiting or running)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def in_flight(self) -> int:
        """Items admitted and not yet answered."""
        return self._in_flight

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the batching loop on the running event loop (idempotent)."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="gensearch-batcher")

    async def stop(self) -> None:
        """Stop batching; requests still queued or running fail with ``BatcherClosedError``."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for job in [*self._pending, *self._running]:
            self._finish(job, error=BatcherClosedError("server is shutting down"))
        self._pending.clear()
        self._running = []
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, key: Hashable, items: Sequence[Any]) -> list[Any]:
        """Queue ``items`` under ``key`` and wait for their results (one per item, same order)."""
        if not self.running:
            raise BatcherClosedError("the model worker is not running")
        items = list(items)
        if not items:
            return []
        if len(items) > self.max_queue:
            raise ValueError(f"{len(items)} items can never fit the queue (max_queue={self.max_queue})")
        if self._in_flight + len(items) > self.max_queue:
            raise QueueFullError(
                f"server busy: {self._in_flight} items queued, limit {self.max_queue}; retry shortly"
            )
        job = _Job(key, items, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._in_flight += len(items)
        self._wakeup.set()
        return await job.future

    # ----------------------------------------------------------------- the loop

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            key = self._pending[0].key
            deadline = loop.time() + self.max_wait
            while self._waiting_items(key) < self.max_batch_size and (remaining := deadline - loop.time()) > 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            jobs = self._take(key)
            if jobs:
                await self._run(jobs)

    def _waiting_items(self, key: Hashable) -> int:
        return sum(len(j.items) for j in self._pending if j.key == key and not j.future.cancelled())

    def _take(self, key: Hashable) -> list[_Job]:
        """Remove and return the oldest jobs for ``key`` that fit one batch (a lone oversized job goes alone)."""
        taken: list[_Job] = []
        size = 0
        keep: deque[_Job] = deque()
        for job in self._pending:
            if job.future.cancelled():  # the client went away
                self._in_flight -= len(job.items)
            elif job.key == key and (not taken or size + len(job.items) <= self.max_batch_size):
                taken.append(job)
                size += len(job.items)
            else:
                keep.append(job)
        self._pending = keep
        return taken

    async def _run(self, jobs: list[_Job]) -> None:
        key = jobs[0].key
        items = [item for job in jobs for item in job.items]
        self.batch_sizes.append(len(items))
        self.batches_run += 1
        if self.on_batch is not None:
            self.on_batch(len(items))
        self._running = jobs
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self._call, key, items)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any model error must fail only its own requests
            self._running = []
            if len(jobs) > 1:
                log.warning("batch of %d requests failed (%r); retrying them one by one", len(jobs), exc)
                for job in jobs:
                    await self._run([job])
                return
            log.error("request failed in the model worker: %r", exc, exc_info=exc)
            self._finish(jobs[0], error=exc)
            return
        self._running = []
        start = 0
        for job in jobs:
            self._finish(job, result=list(results[start : start + len(job.items)]))
            start += len(job.items)

    def _call(self, key: Hashable, items: list[Any]) -> Sequence[Any]:
        results = self.run_batch(key, items)
        if len(results) != len(items):
            raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} items")
        return results

    def _finish(self, job: _Job, result: list[Any] | None = None, error: BaseException | None = None) -> None:
        self._in_flight -= len(job.items)
        if job.future.done():  # cancelled by a client that went away
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
