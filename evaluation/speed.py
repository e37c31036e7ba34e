"""Speed in the same run: per-query latency, batched throughput, and LLM2Vec-Gen's encode overhead.

Absolute numbers depend on the machine and its load; the report's claims are ratios measured side by
side in one process (query latency, the systems taking turns query by query, HyDE's in the run's second phase
(``phases``); ``encode()`` vs a bare backbone forward pass, alternating batch by batch).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from tqdm.auto import tqdm

from encoder import LLM2VecGenEncoder
from encoder.base import length_sorted_batches

from .systems import System

T = TypeVar("T")


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def phases(systems: Sequence[System]) -> list[list[System]]:
    """The systems that do not generate, then those that do (HyDE): the order a run must work in.

    CTranslate2's OpenMP calls bind to torch's ``libgomp``, and it starts its team from a thread of its own. Once
    it has generated, that one runtime manages more threads than there are CPUs and throttles spinning, so torch's
    workers sleep and wake at every parallel region for the rest of the process (about 800 of each per LLM2Vec-Gen
    query, ~25% slower on 2 cores). The product's encoders never share a process with a generation engine, so
    everything they are timed on (latency, throughput) comes before anything has generated."""
    return [group for group in ([s for s in systems if not s.generates], [s for s in systems if s.generates]) if group]


def query_latencies(systems: Sequence[System], queries: list[str], progress: bool = True) -> dict[str, dict[str, float]]:
    """Per system, median and max milliseconds to embed one query at a time (batch 1).

    The systems take turns query by query, and who goes first rotates, so load from outside the process
    hits every system alike and the ratios between them hold even when the absolute times drift. Each
    system embeds the first query once, untimed, before the timing starts."""
    if not queries:
        raise ValueError("need at least one query to time")
    for system in systems:
        system.encode_queries(queries[:1])  # warm-up (allocations, caches)
    seconds: dict[str, list[float]] = {system.name: [] for system in systems}
    names = ", ".join(system.name for system in systems)
    for i, query in enumerate(tqdm(queries, desc=f"latency ({names})", unit="query", disable=not progress)):
        for system in rotated(systems, i):
            seconds[system.name].append(timed(lambda: system.encode_queries([query]))[1])
    return {
        name: {"query_ms": 1000 * statistics.median(times), "query_ms_max": 1000 * max(times), "latency_queries": len(queries)}
        for name, times in seconds.items()
    }


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` starting at position ``shift`` (mod its length), wrapping around."""
    k = shift % len(items) if items else 0
    return [*items[k:], *items[:k]]


def throughput(n_items: int, seconds: float) -> float:
    """Items per second (0 for an empty batch)."""
    return n_items / seconds if seconds > 0 else 0.0


def encode_overhead(encoder: LLM2VecGenEncoder, texts: list[str], batch_size: int = 16, rounds: int = 1) -> dict[str, float]:
    """``encode()`` vs a bare backbone forward pass over the same left-padded (instruction + text + K) batches.

    The two sides alternate batch by batch (and which goes first) so background load hits both alike;
    ``encode_overhead_ratio`` = bare seconds / encode seconds (1.0 = encode adds nothing). Same method
    as ``benchmarks/encode_overhead.py``. The bare pass is the eager base model: with an encode path installed
    (``packed``, the default) the ratio also holds that path's gain.
    """
    token_ids = encoder.tokenize(texts, "document")
    n_tokens = sum(len(t) + encoder.model.num_tokens for t in token_ids)
    special = [encoder.backbone.pad_token_id] * encoder.model.num_tokens  # stand-ins: both sides run T+K positions
    groups = length_sorted_batches([len(t) for t in token_ids], batch_size)
    base_model = encoder.backbone.model.base_model

    def bare(group: list[int]) -> float:
        ids, mask = encoder._left_pad([token_ids[i] + special for i in group])  # padding is not timed
        with torch.inference_mode():
            return timed(lambda: base_model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)))[1]

    def ours(group: list[int]) -> float:
        return timed(lambda: encoder.encode([texts[i] for i in group], task="document", batch_size=batch_size, show_progress_bar=False))[1]

    bare(groups[0]), ours(groups[0])  # warm-up
    bare_s = ours_s = 0.0
    for r in range(rounds):
        for i, group in enumerate(groups):
            first, second = (bare, ours) if (r + i) % 2 == 0 else (ours, bare)
            a, b = first(group), second(group)
            bare_s += a if first is bare else b
            ours_s += b if first is bare else a
    return {
        "encode_overhead_ratio": bare_s / ours_s,
        "bare_tokens_per_s": n_tokens * rounds / bare_s,
        "encode_tokens_per_s": n_tokens * rounds / ours_s,
        "overhead_texts": len(texts),
    }
