"""`gensearch adapt`'s first stage, question writing, under different batching: seconds per chunk, from one run.

The same seeded sample of a collection's chunks is asked for questions (``training.questions``) by the backbone's
generation engine (CTranslate2 on CPU) in each setting; printed per setting: seconds per chunk, its ratio to the
first setting, questions kept per chunk (after ``parse_questions``' filters) and prompt tokens per chunk. Settings
are ``CALL/BATCH`` pairs: CALL chunks per engine call (what ``write_questions`` appends to its file at once; within a
call CTranslate2 sorts prompts by length before batching them) and BATCH the engine's batch size.

    .venv/bin/python benchmarks/question_writing.py --collection postgres_identifiers_fused \
        --qdrant-path runs/default/eval-adapt/qdrant [--n 96] [--settings 16/16,64/16,64/32] [--max-chars 1500]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from encoder import get_settings
from encoder.backbone import load_backbone
from encoder.device import cpu_model, resolve_device, resolve_dtype
from encoder.generation import load_engine
from indexer.adaptation import sample_chunks
from indexer.store import connect
from training.questions import parse_questions, question_prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--qdrant-path", type=Path, default=None, help="the embedded store holding it (default: the settings')")
    parser.add_argument("--n", type=int, default=96, help="chunks asked in each setting")
    parser.add_argument("--settings", default="16/16,64/16,64/32", help="CALL/BATCH pairs, comma-separated")
    parser.add_argument("--max-chars", default="1500", help="characters of a chunk the prompt shows (comma-separated to compare)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    settings = get_settings()
    if args.qdrant_path:
        settings = settings.model_copy(update={"qdrant_path": args.qdrant_path})
    with connect(settings) as client:
        texts = [text for _, text, _ in sample_chunks(client, args.collection, args.n, seed=0)]
    device = resolve_device("auto")
    backbone = load_backbone(None, device, resolve_dtype("auto", device), settings)
    print(f"{len(texts)} chunks of {args.collection} · {cpu_model()} · {args.threads} threads")
    results = []
    for max_chars in (int(v) for v in args.max_chars.split(",")):
        prompts = [question_prompt(t, max_chars=max_chars) for t in texts]
        prompt_tokens = sum(len(backbone.tokenizer(p).input_ids) for p in prompts) / len(prompts)
        for setting in args.settings.split(","):
            call, batch = (int(v) for v in setting.split("/"))
            engine = load_engine(settings.generation_engine, backbone, settings=settings, batch_size=batch)
            engine.answer(prompts[:2], system=None, max_new_tokens=8)  # warm-up
            started = time.perf_counter()
            kept = 0
            for start in range(0, len(prompts), call):
                answers = engine.answer(prompts[start : start + call], system=None, max_new_tokens=args.max_new_tokens)
                kept += sum(len(parse_questions(a.text, t)) for a, t in zip(answers, texts[start : start + call]))
            seconds = (time.perf_counter() - started) / len(texts)
            results.append({"max_chars": max_chars, "call": call, "batch": batch, "engine": engine.describe(), "s_per_chunk": round(seconds, 3),
                            "questions_per_chunk": round(kept / len(texts), 2), "prompt_tokens": round(prompt_tokens, 1)})
            ratio = results[0]["s_per_chunk"] / seconds
            print(f"max_chars {max_chars:5d} · call {call:3d} · batch {batch:3d}: {seconds:.3f} s/chunk ({ratio:.2f}x the first), "
                  f"{kept / len(texts):.2f} questions kept per chunk, {prompt_tokens:.0f} prompt tokens", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu_model(), "collection": args.collection, "n": len(texts), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
