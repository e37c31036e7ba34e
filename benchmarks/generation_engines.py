"""Generation engines side by side: the same training prompts answered by transformers and by llama.cpp.

Both engines get the same chat-template token ids (safety system prompt, greedy, the backbone's real EOS)
for a seeded sample of training queries (``gensearch train prepare``'s file, train split), answered in the
same order (sorted by prompt length, as ``gensearch train generate`` batches them). Printed, from one run:

- new tokens/s and responses/min per engine, and the ratio to transformers;
- agreement with transformers' greedy output: exact-match rate of the response text, first-token and
  refusal agreement, and the teacher (all-mpnet-base-v2) cosine between the two responses (mean, min).

    .venv/bin/python benchmarks/generation_engines.py [--queries runs/default/queries.jsonl] [--n 200]
        [--max-new-tokens 64] [--engines transformers,llama.cpp] [--out reports/generation_engines.json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from encoder import get_settings, load_encoder
from encoder.backbone import load_backbone
from encoder.device import cpu_model, resolve_device, resolve_dtype
from encoder.generation import DEFAULT_SYSTEM, chat_prompt_ids, load_engine, resolve_system
from training.jsonl import read_jsonl
from training.refusals import is_refusal


def sample_queries(path: Path, n: int, seed: int, max_chars: int) -> list[str]:
    rows = [r for r in read_jsonl(path) if r["split"] == "train" and len(r["query"]) <= max_chars]
    return [r["query"] for r in random.Random(seed).sample(rows, min(n, len(rows)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=Path, default=Path("runs/default/queries.jsonl"))
    parser.add_argument("--n", type=int, default=200, help="training prompts (same for every engine)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--engines", default="transformers,llama.cpp,ctranslate2")
    parser.add_argument("--max-chars", type=int, default=300, help="only queries up to this long (as `train prepare --max-chars`)")
    parser.add_argument("--batch-size", type=int, default=48, help="transformers / ctranslate2 batch")
    parser.add_argument("--parallel", type=int, default=16, help="llama.cpp slots")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports/generation_engines.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    settings = get_settings()
    backbone = load_backbone(None, device, resolve_dtype("auto", device), settings)
    system = resolve_system(DEFAULT_SYSTEM)[1]
    queries = sample_queries(args.queries, args.n, args.seed, args.max_chars)
    lengths = [len(p) for p in chat_prompt_ids(backbone.tokenizer, queries, system)]
    queries = [q for _, q in sorted(zip(lengths, queries), key=lambda t: t[0])]
    print(f"{len(queries)} training prompts ({sum(lengths)} prompt tokens), {args.max_new_tokens} new tokens, "
          f"backbone {backbone.name}, CPU {cpu_model()}, {args.threads} threads")

    results: dict[str, dict] = {}
    answers: dict[str, list] = {}
    for name in args.engines.split(","):
        engine = load_engine(name, backbone, settings=settings, batch_size=args.batch_size, parallel=args.parallel, threads=args.threads)
        engine.answer(queries[:2], system=system, max_new_tokens=4)  # warm-up, not timed
        started = time.perf_counter()
        answers[name] = engine.answer(queries, system=system, max_new_tokens=args.max_new_tokens)
        seconds = time.perf_counter() - started
        tokens = sum(a.n_tokens for a in answers[name])
        results[name] = {**engine.describe(), "seconds": round(seconds, 1), "new_tokens": tokens,
                         "tokens_per_s": round(tokens / seconds, 2), "responses_per_min": round(60 * len(queries) / seconds, 1)}
        print(f"{name:>12}: {seconds:7.1f} s, {tokens} new tokens, {tokens / seconds:7.1f} tok/s, "
              f"{60 * len(queries) / seconds:6.1f} responses/min")
        del engine

    reference = answers.get("transformers")
    if reference is not None:
        teacher = load_encoder("teacher")
        ref_vectors = teacher.encode([a.text for a in reference], task="document", show_progress_bar=False)
        for name, theirs in answers.items():
            if name == "transformers":
                continue
            vectors = teacher.encode([a.text for a in theirs], task="document", show_progress_bar=False)
            cosine = np.sum(vectors * ref_vectors, axis=1)
            row = results[name]
            row["ratio_vs_transformers"] = round(row["tokens_per_s"] / results["transformers"]["tokens_per_s"], 2)
            row["time_ratio_vs_transformers"] = round(results["transformers"]["seconds"] / row["seconds"], 2)
            row["exact_match"] = round(float(np.mean([a.response == b.response for a, b in zip(theirs, reference)])), 3)
            row["first_8_chars_match"] = round(float(np.mean([a.response[:8] == b.response[:8] for a, b in zip(theirs, reference)])), 3)
            row["refusal_agreement"] = round(float(np.mean([is_refusal(a.text) == is_refusal(b.text) for a, b in zip(theirs, reference)])), 3)
            row["teacher_cosine_mean"] = round(float(cosine.mean()), 4)
            row["teacher_cosine_min"] = round(float(cosine.min()), 4)
            print(f"{name} vs transformers: {row['time_ratio_vs_transformers']:.2f}x faster (wall time, same prompts), "
                  f"{row['ratio_vs_transformers']:.2f}x tok/s; exact match {row['exact_match']:.3f}, "
                  f"first 8 chars {row['first_8_chars_match']:.3f}, refusal agreement {row['refusal_agreement']:.3f}, "
                  f"teacher cosine mean {row['teacher_cosine_mean']:.3f} / min {row['teacher_cosine_min']:.3f}")
    report = {"cpu": cpu_model(), "threads": args.threads, "backbone": backbone.name, "prompts": len(queries),
              "prompt_tokens": sum(lengths), "max_new_tokens": args.max_new_tokens, "system": DEFAULT_SYSTEM,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "engines": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
