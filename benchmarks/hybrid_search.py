"""Dense vs keyword (BM25) vs hybrid search, side by side in one run, through the product's read path.

    .venv/bin/python benchmarks/hybrid_search.py --encoder baseline --out reports/hybrid_search.json

Two tasks, each indexed once into a fresh embedded Qdrant (with dense and keyword vectors) and searched
with ``indexer.search.search(mode=...)`` for every mode:

1. **faq**: the evaluation's Python FAQ task (``evaluation.datasets.faq_dataset``): questions against the
   FAQ answer passages; relevant = the question's own answer.
2. **postgres-identifiers**: built here from Debian's ``postgresql-doc-15`` (SOURCES.md, evaluation
   only): for a seeded sample of the configuration parameters defined in ``runtime-config-*.html``
   (``<dt id="GUC-...">``) the query "What does the <name> setting control?", and for every system
   catalog / view page (``catalog-pg-*.html``, ``view-pg-*.html``) "Which columns does <pg_name> have?";
   relevant = the page that defines it. The corpus is those pages plus ``monitoring-stats.html``.

Ranking is per page: chunk hits are collapsed to their page (first occurrence), then nDCG@10,
Recall@10 and MRR@10 against the relevant page(s). Prints one table; ``--out`` writes the JSON.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import platform
import random
import re
import tempfile
import time
from pathlib import Path

from encoder import get_settings, load_encoder
from evaluation.datasets import faq_dataset
from evaluation.metrics import retrieval_metrics
from indexer.corpus import Corpus, SourceDoc, load_folder
from indexer.pipeline import index_corpus
from indexer.search import MODES, search
from indexer.store import connect

PG_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
_GUC = re.compile(r'<dt id="GUC-[^"]*"><span class="term"><code class="varname">([a-z0-9_.]+)</code>')


def faq_task() -> tuple[Corpus, list[tuple[str, set[str]]]]:
    queries, passages = faq_dataset()
    corpus = Corpus("faq-passages", docs=[SourceDoc(p.id, p.text, "text", "") for p in passages])
    return corpus, [(q.text, set(q.relevant)) for q in queries]


def postgres_task(gucs: int, seed: int) -> tuple[Corpus, list[tuple[str, set[str]]]]:
    if not PG_DOCS.is_dir():
        raise SystemExit(f"{PG_DOCS} is missing: apt-get install postgresql-doc-15 (Debian, SOURCES.md)")
    pages = sorted(PG_DOCS.glob("runtime-config-*.html")) + sorted(PG_DOCS.glob("catalog-pg-*.html")) + sorted(PG_DOCS.glob("view-pg-*.html"))
    with tempfile.TemporaryDirectory() as tmp:  # load_folder reads a folder: link just these pages into one
        for page in [*pages, PG_DOCS / "monitoring-stats.html"]:
            (Path(tmp) / page.name).symlink_to(page)
        corpus = load_folder(tmp)  # sources are the resolved pages, usable after the links are gone
    by_name = {Path(d.source).name: d.source for d in corpus.docs}
    defined = [(name, page.name) for page in pages if page.name.startswith("runtime-config") for name in _GUC.findall(page.read_text())]
    queries = [(f"What does the {name} setting control?", {by_name[page]}) for name, page in random.Random(seed).sample(defined, min(gucs, len(defined)))]
    for page in pages:
        if page.name.startswith(("catalog-pg-", "view-pg-")):
            ident = "pg_" + page.stem.split("-pg-", 1)[1].replace("-", "_")
            queries.append((f"Which columns does {html.unescape(ident)} have?", {by_name[page.name]}))
    return corpus, queries


def page_ranking(sources: list[str], k: int) -> list[str]:
    """Chunk hits collapsed to their pages, first occurrence kept, at most k."""
    seen: dict[str, None] = {}
    for source in sources:
        seen.setdefault(source, None)
    return list(seen)[:k]


def run_task(name: str, corpus: Corpus, queries: list[tuple[str, set[str]]], encoder, chunks_per_query: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings().model_copy(update={"qdrant_path": Path(tmp) / "qdrant"})
        with connect(settings) as client:
            started = time.perf_counter()
            report = index_corpus(client, encoder, corpus, name, settings=settings)
            out = {"documents": len(corpus.docs), "chunks": report.chunks, "queries": len(queries), "index_seconds": round(time.perf_counter() - started, 1)}
            for mode in MODES:
                started = time.perf_counter()
                rankings = [page_ranking([h.source for h in search(client, encoder, name, q, chunks_per_query, mode=mode).hits], 10) for q, _ in queries]
                metrics = retrieval_metrics(rankings, [rel for _, rel in queries], k=10)
                out[mode] = {**{k: round(v, 4) for k, v in metrics.items()}, "ms_per_query": round(1000 * (time.perf_counter() - started) / len(queries), 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="baseline", help="Dense encoder (llm2vec-gen is ~0.7 chunks/s on a 2-core CPU; baseline is fast).")
    parser.add_argument("--gucs", type=int, default=150, help="Configuration-parameter queries sampled for the PostgreSQL task.")
    parser.add_argument("--chunks-per-query", type=int, default=30, help="Chunk hits fetched before collapsing to pages.")
    parser.add_argument("--tasks", default="faq,postgres-identifiers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    encoder = load_encoder(args.encoder)
    builders = {"faq": faq_task, "postgres-identifiers": lambda: postgres_task(args.gucs, args.seed)}
    results = {"encoder": args.encoder, "cpu": platform.processor() or platform.machine(), "tasks": {}}
    for task in args.tasks.split(","):
        corpus, queries = builders[task]()
        results["tasks"][task] = run_task(task.replace("-", "_"), corpus, queries, encoder, args.chunks_per_query)
    print(f"{'task':<22} {'mode':<7} {'nDCG@10':>8} {'Recall@10':>9} {'MRR@10':>7} {'ms/query':>9}")
    for task, out in results["tasks"].items():
        for mode in MODES:
            m = out[mode]
            print(f"{task:<22} {mode:<7} {m['ndcg@10']:>8.3f} {m['recall@10']:>9.3f} {m['mrr@10']:>7.3f} {m['ms_per_query']:>9.1f}")
        print(f"{'':<22} ({out['documents']} documents, {out['chunks']} chunks, {out['queries']} queries, indexed in {out['index_seconds']} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
