"""Prefix-KV trick: time of one training step with and without it, same batch, same model.

The plain path runs `instruction + query + K special tokens` with gradients; the prefix-KV path runs
the text without gradients and only the K special positions with them (``LLM2VecGen.
special_states_cached_prefix``). Both then do the same projections, L_align and L_recon and one
backward pass. The two alternate; medians are reported, with the speed-up of the special-state part
alone and of the whole step.

    .venv/bin/python benchmarks/prefix_kv.py [--backbone default] [--batch-size 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from encoder import load_encoder

QUERIES = [
    "How do I read a large CSV file in Python without loading it all into memory?",
    "What is the difference between a list and a tuple?",
    "Explain how Python's garbage collector handles reference cycles.",
    "Write a function that checks whether a string is a palindrome.",
    "How can I make an HTTP request with a timeout and retries?",
    "What does the `yield` keyword do and when should I use a generator?",
    "How do I sort a dictionary by its values in descending order?",
    "Why does my multithreaded Python program not use all CPU cores?",
]
RESPONSE = "You can do this with a short function. " * 12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="default")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    enc = load_encoder(args.backbone, dtype=args.dtype)
    model = enc.model
    queries = (QUERIES * (args.batch_size // len(QUERIES) + 1))[: args.batch_size]
    ids, mask = enc._left_pad(enc.tokenize(queries, "query"))
    response = enc.backbone.tokenizer([RESPONSE] * args.batch_size, add_special_tokens=False, truncation=True, max_length=args.response_tokens, return_tensors="pt")
    targets = torch.randn(args.batch_size, model.teacher_dim)

    def step(states_fn) -> tuple[float, float]:
        start = time.perf_counter()
        h = states_fn(ids, mask)
        states_s = time.perf_counter() - start
        p, e = model.project(h)
        loss = model.align_loss(e, targets) + model.recon_loss(p, response["input_ids"], response["attention_mask"])
        loss.backward()
        model.zero_grad(set_to_none=True)
        return states_s, time.perf_counter() - start

    paths = {"plain": model.special_states, "prefix-kv": model.special_states_cached_prefix}
    for fn in paths.values():
        step(fn)  # warm-up
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for r in range(args.rounds):
        for name in (list(paths) if r % 2 == 0 else list(reversed(paths))):
            results[name].append(step(paths[name]))

    def median(name: str, i: int) -> float:
        return statistics.median(x[i] for x in results[name])

    print(f"backbone={enc.backbone.name} dtype={enc.backbone.model.dtype} batch={args.batch_size} "
          f"query tokens={int(mask.sum())} response tokens/row={response['input_ids'].shape[1]} rounds={args.rounds}")
    for name in paths:
        print(f"{name:10s}: special states {median(name, 0):.2f} s, whole step (fwd+bwd, both losses) {median(name, 1):.2f} s")
    print(f"speed-up special states = {median('plain', 0) / median('prefix-kv', 0):.2f}x, "
          f"whole step = {median('plain', 1) / median('prefix-kv', 1):.2f}x")


if __name__ == "__main__":
    main()
