"""Indexing throughput vs bare ``encode`` throughput, and the query latency split, in one run.

    .venv/bin/python benchmarks/index_throughput.py --encoder test --glob 'faq/[gl]*'
    .venv/bin/python benchmarks/index_throughput.py --encoder llm2vec-gen --glob 'faq/[gl]*'

1. Chunks a subset of the Python docs; times ``encoder.encode`` on exactly those chunk texts (bare).
2. Times the whole indexing run (load files, chunk, embed + logit-lens words, upsert into a fresh
   embedded Qdrant in a temp folder) and reports the ratio of chunks/s (goal >= 0.85).
   1 and 2 alternate for ``--rounds`` rounds; the ratio is the median of the per-round ratios.
3. Times FAQ questions (headings ending in '?') through ``search``: encode vs Qdrant.
Writes the numbers as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from encoder import get_settings, load_encoder
from indexer.chunking import chunk_documents, embed_text
from indexer.corpus import load_folder, python_docs_dir
from indexer.embedding import tokenizer_of
from indexer.pipeline import index_corpus
from indexer.search import search
from indexer.store import connect, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="test", help="test (SmolLM2 LLM2Vec-Gen), llm2vec-gen (default backbone), baseline, ...")
    parser.add_argument("--glob", default="faq/[gl]*", help="Python docs subset (path glob under _sources).")
    parser.add_argument("--limit", type=int, default=None, help="At most this many files.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating (bare, index) timing rounds.")
    parser.add_argument("--queries", type=int, default=20, help="Queries timed for the latency split.")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    settings = get_settings()
    encoder = load_encoder(args.encoder)
    root = python_docs_dir(settings)
    corpus = load_folder(root, glob=args.glob, limit=args.limit)
    tokenize = tokenizer_of(encoder)
    chunks = chunk_documents(corpus.docs, corpus.root, tokenize, settings.chunk_size, settings.chunk_overlap)
    texts = [embed_text(c) for c in chunks]
    tokens = sum(len(tokenize(t)) for t in texts)
    print(f"encoder {encoder.name} ({getattr(getattr(encoder, 'backbone', None), 'name', encoder.name)}), "
          f"subset {args.glob!r}: {len(corpus.docs)} files, {len(chunks)} chunks, {tokens:,} tokens")

    def bare_encode() -> float:
        t0 = time.perf_counter()
        encoder.encode(texts, task="document", show_progress_bar=False)
        return time.perf_counter() - t0

    def index_once(client, settings_) -> tuple[float, dict]:
        t0 = time.perf_counter()
        corpus_ = load_folder(root, glob=args.glob, limit=args.limit)  # loading is part of indexing
        report = index_corpus(client, encoder, corpus_, "bench", settings=settings_, recreate=True, show_progress=False)
        seconds = time.perf_counter() - t0
        assert count(client, "bench") == len(chunks), "indexed point count differs from the chunk count"
        return seconds, report.timings

    encoder.encode(texts[:2], task="document", show_progress_bar=False)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        run_settings = settings.model_copy(update={"qdrant_path": Path(tmp) / "qdrant", "qdrant_url": None})
        with connect(run_settings) as client:
            # Rounds alternate the order (bare, index), (index, bare), ... and the ratio is the median of the
            # per-round ratios: on a shared machine the load drifts, so only close-in-time pairs are comparable.
            bares, indexings, splits = [], [], []
            for r in range(args.rounds):
                if r % 2 == 0:
                    bares.append(bare_encode())
                    seconds, timings = index_once(client, run_settings)
                else:
                    seconds, timings = index_once(client, run_settings)
                    bares.append(bare_encode())
                indexings.append(seconds)
                splits.append(timings)
                print(f"round {r + 1}: bare encode {bares[-1]:.1f} s, indexing {seconds:.1f} s, ratio {bares[-1] / seconds:.3f}", flush=True)
            ratios = [b / i for b, i in zip(bares, indexings)]
            best = ratios.index(statistics.median_low(ratios))
            bare, indexing, split = bares[best], indexings[best], splits[best]

            questions = [c.metadata["section"].split(" > ")[-1] for c in chunks if c.metadata["section"].endswith("?")]
            questions = list(dict.fromkeys(questions))[: args.queries]
            search(client, encoder, "bench", questions[0], k=10)  # warm-up
            encode_ms, qdrant_ms = [], []
            for question in questions:
                result = search(client, encoder, "bench", question, k=10)
                encode_ms.append(result.encode_seconds * 1000)
                qdrant_ms.append(result.qdrant_seconds * 1000)

    results = {
        "encoder": encoder.name,
        "model": getattr(getattr(encoder, "backbone", None), "name", encoder.name),
        "subset": args.glob,
        "files": len(corpus.docs),
        "chunks": len(chunks),
        "tokens": tokens,
        "bare_encode_s": bare,
        "rounds": [{"bare_encode_s": b, "index_s": i, "ratio": b / i} for b, i in zip(bares, indexings)],
        "bare_chunks_per_s": len(chunks) / bare,
        "index_s": indexing,
        "index_chunks_per_s": len(chunks) / indexing,
        "index_tokens_per_s": tokens / indexing,
        "ratio": statistics.median(ratios),
        "ratio_total": sum(bares) / sum(indexings),
        "embed_share": split["embed"] / indexing,  # share of indexing time in forward passes (load-drift free)
        "index_split_s": {**split, "load_upsert_rest": indexing - split["chunk"] - split["embed"]},
        "queries": len(questions),
        "query_encode_ms_median": statistics.median(encode_ms),
        "query_qdrant_ms_median": statistics.median(qdrant_ms),
        "query_encode_ms_mean": statistics.fmean(encode_ms),
        "query_qdrant_ms_mean": statistics.fmean(qdrant_ms),
    }
    print(f"median round: bare encode {bare:.1f} s ({results['bare_chunks_per_s']:.2f} chunks/s), "
          f"indexing {indexing:.1f} s ({results['index_chunks_per_s']:.2f} chunks/s, {results['index_tokens_per_s']:.0f} tokens/s; "
          f"chunk {split['chunk']:.1f} s, embed+lens {split['embed']:.1f} s, load+upsert+rest {results['index_split_s']['load_upsert_rest']:.1f} s)")
    print(f"ratio       : {results['ratio']:.3f} median of {args.rounds} rounds, {results['ratio_total']:.3f} over all "
          "(indexing / bare encode throughput; goal >= 0.85)")
    print(f"embed share : {results['embed_share']:.3f} of indexing time is the forward pass itself "
          "(same run, immune to load drift; the rest is loading, chunking, upserts)")
    print(f"query       : encode {results['query_encode_ms_median']:.1f} ms, qdrant {results['query_qdrant_ms_median']:.2f} ms "
          f"(median of {len(questions)}, {len(chunks)} points)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
