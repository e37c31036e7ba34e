"""Encode overhead: `encode()` throughput vs a bare backbone forward pass over the same token batches.

Both sides run the same left-padded (instruction + text + K special) batches in the same dtype;
the bare side is just `lm.base_model(ids, mask)` on pre-built tensors, so the ratio measures what
encode adds (tokenising, sorting, padding, projections, normalising, numpy conversion).
The two sides alternate batch by batch and the median over rounds is reported, to damp machine noise.

    .venv/bin/python benchmarks/encode_overhead.py [--backbone default] [--dtype auto] [--texts 256]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from encoder import load_encoder
from encoder.base import length_sorted_batches

WORDS = (
    "python list dict file read write socket thread process memory error exception import module class "
    "function return value string bytes encode decode query index vector search database table column"
).split()


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Deterministic texts of 5 to 200 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(5, 200))) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="default", help="registry name, folder or hub id")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    enc = load_encoder(args.backbone, dtype=args.dtype)
    texts = make_texts(args.texts)
    token_ids = enc.tokenize(texts, "document")
    n_tokens = sum(len(t) + enc.model.num_tokens for t in token_ids)
    special = [enc.backbone.pad_token_id] * enc.model.num_tokens  # stand-ins so both sides run T+K positions
    groups = length_sorted_batches([len(t) for t in token_ids], args.batch_size)
    base_model = enc.backbone.model.base_model

    def bare(group: list[int]) -> float:
        ids, mask = enc._left_pad([token_ids[i] + special for i in group])  # padding is not timed
        start = time.perf_counter()
        with torch.inference_mode():
            base_model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0))
        return time.perf_counter() - start

    def ours(group: list[int]) -> float:
        start = time.perf_counter()
        enc.encode([texts[i] for i in group], task="document", batch_size=args.batch_size, show_progress_bar=False)
        return time.perf_counter() - start

    bare(groups[0]), ours(groups[0])  # warm-up
    # Alternate the two sides batch by batch so background load hits both alike; median over rounds.
    totals: dict[str, list[float]] = {"bare": [], "encode": []}
    for r in range(args.rounds):
        # Alternate which side goes first, so neither always runs on caches the other warmed.
        pairs = [(bare(g), ours(g)) if (r + i) % 2 == 0 else tuple(reversed((ours(g), bare(g)))) for i, g in enumerate(groups)]
        totals["bare"].append(sum(b for b, _ in pairs))
        totals["encode"].append(sum(o for _, o in pairs))
    bare_s, ours_s = statistics.median(totals["bare"]), statistics.median(totals["encode"])
    print(f"backbone={enc.backbone.name} dtype={enc.backbone.model.dtype} threads={torch.get_num_threads()} "
          f"texts={len(texts)} tokens={n_tokens} batch={args.batch_size} rounds={args.rounds}")
    print(f"bare forward : {n_tokens / bare_s:8.1f} tok/s ({bare_s:.2f} s)")
    print(f"encode()     : {n_tokens / ours_s:8.1f} tok/s ({ours_s:.2f} s), {len(texts) / ours_s:.1f} texts/s")
    print(f"ratio encode/bare = {bare_s / ours_s:.3f}")


if __name__ == "__main__":
    main()
