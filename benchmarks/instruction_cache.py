"""Cached instruction keys/values: encode time with and without them, same texts, same encoder, one run.

``LLM2VecGenEncoder`` runs the instruction tokens every text starts with once and keeps their keys
and values (``cache_instruction=True``, the default); without the cache every text runs
``instruction + text + K special tokens``. This prints both sides for single queries (batch 1, the
search latency) and for batches of documents (indexing), alternating the two sides so background
load hits both alike, and the largest difference of the special states (the two are the same
computation up to float rounding).

    .venv/bin/python benchmarks/instruction_cache.py [--backbone default] [--queries 24] [--documents 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from encoder import load_encoder
from encoder.device import cpu_model

QUERIES = [
    "How do I read a large CSV file in Python without loading it all into memory?",
    "What is the difference between a list and a tuple?",
    "How can I make an HTTP request with a timeout?",
    "sort dict by value",
    "Why does my multithreaded program not use all CPU cores?",
    "What does the yield keyword do?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="default", help="registry name, folder or hub id")
    parser.add_argument("--dtype", default="float32", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--queries", type=int, default=24, help="single-query encodes per side")
    parser.add_argument("--documents", type=int, default=64, help="documents per side (batches of --batch-size)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    enc = load_encoder(args.backbone, dtype=args.dtype)
    queries = (QUERIES * (args.queries // len(QUERIES) + 1))[: args.queries]
    documents = [(q + " ") * (1 + i % 8) for i, q in enumerate(QUERIES * (args.documents // len(QUERIES) + 1))][: args.documents]

    def run(cached: bool, fn) -> float:
        enc.cache_instruction = cached
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    sides = {"full prompt": False, "cached instruction": True}
    for cached in sides.values():  # warm-up; builds the cache
        run(cached, lambda: enc.encode(queries[:2], task="query"))
    latency: dict[str, list[float]] = {name: [] for name in sides}
    for i, query in enumerate(queries):
        for name in (list(sides) if i % 2 == 0 else list(reversed(sides))):
            latency[name].append(run(sides[name], lambda q=query: enc.encode([q], task="query")))
    batched: dict[str, float] = dict.fromkeys(sides, 0.0)
    for i in range(0, len(documents), args.batch_size):
        chunk = documents[i : i + args.batch_size]
        for name in (list(sides) if (i // args.batch_size) % 2 == 0 else list(reversed(sides))):
            batched[name] += run(sides[name], lambda c=chunk: enc.encode(c, task="document", batch_size=args.batch_size, show_progress_bar=False))

    enc.cache_instruction = False
    full = enc.special_states(queries[:6], "query")
    enc.cache_instruction = True
    cached = enc.special_states(queries[:6], "query")
    print(f"cpu={cpu_model()!r} threads={torch.get_num_threads()} backbone={enc.backbone.name} dtype={enc.backbone.model.dtype} "
          f"instruction tokens={len(enc._instruction_prefix(enc.tokenize(queries, 'query')))}")
    for name in sides:
        print(f"{name:18s}: query latency median {1000 * statistics.median(latency[name]):6.1f} ms, "
              f"{args.documents} documents {batched[name]:6.2f} s ({args.documents / batched[name]:.1f} docs/s)")
    print(f"speed-up: query latency {statistics.median(latency['full prompt']) / statistics.median(latency['cached instruction']):.2f}x, "
          f"documents {batched['full prompt'] / batched['cached instruction']:.2f}x; "
          f"max |h_cached - h_full| / max |h| = {float((cached - full).abs().max() / full.abs().max()):.1e}")


if __name__ == "__main__":
    main()
