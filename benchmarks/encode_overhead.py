"""Encode overhead: `encode()` throughput vs a bare backbone forward pass over the same token batches.

Both sides run the same left-padded (instruction + text + K special) batches in the same dtype; the
bare side is just `lm.base_model(ids, mask)` on pre-built tensors, so the ratio measures what encode
adds (tokenising, sorting, padding, projections, normalising, numpy conversion). The two sides
alternate batch by batch so background load hits both alike (``evaluation.speed.encode_overhead``,
the same code the evaluation report uses).

    .venv/bin/python benchmarks/encode_overhead.py [--backbone default] [--dtype auto] [--texts 256]
"""

from __future__ import annotations

import argparse
import random

import torch

from encoder import load_encoder
from evaluation.speed import encode_overhead

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
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    enc = load_encoder(args.backbone, dtype=args.dtype)
    result = encode_overhead(enc, make_texts(args.texts), batch_size=args.batch_size, rounds=args.rounds)
    print(f"backbone={enc.backbone.name} dtype={enc.backbone.model.dtype} threads={torch.get_num_threads()} "
          f"texts={args.texts} batch={args.batch_size} rounds={args.rounds}")
    print(f"bare forward : {result['bare_tokens_per_s']:8.1f} tok/s")
    print(f"encode()     : {result['encode_tokens_per_s']:8.1f} tok/s")
    print(f"ratio encode/bare = {result['encode_overhead_ratio']:.3f}")


if __name__ == "__main__":
    main()
