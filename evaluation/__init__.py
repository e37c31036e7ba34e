"""gensearch evaluation: retrieval quality, AdvBench-IR-style safety, speed and decodability, all systems in one run.

    gensearch eval all                 # full run -> reports/eval.json, eval.md, eval_*.png, eval_examples.json
    gensearch eval all --quick         # small subset (CI): checks the pipeline, numbers are not meaningful
    gensearch eval search-modes        # dense / keyword / hybrid search through Qdrant -> reports/eval_search_modes.json, .md

    from evaluation.datasets import faq_dataset, safety_passages, advbench_queries
    from evaluation.metrics import ndcg_at_k, recall_at_k, mrr_at_k, hit_at_k, share_at_k
    from evaluation.systems import load_systems          # llm2vec-gen, teacher, baseline, hyde, backbone-mean
    from evaluation.run import EvalConfig, run_eval

Modules, one job each: ``datasets`` (Python FAQ queries + answer passages, labelled PyRIT safety passages,
AdvBench queries), ``metrics`` (pure ranking metrics), ``search`` (exact in-memory cosine top-k),
``systems`` (the compared query/document encoders), ``speed`` (latency, throughput, encode overhead),
``decodability`` (decoded query embeddings vs real responses), ``report`` (JSON, Markdown, PNG charts),
``run`` (one process, every system, every task), ``search_modes`` (dense / keyword / hybrid search
through the real indexing pipeline and an embedded Qdrant, one encoder; not part of ``all``), ``cli``.
For MTEB, pass ``SentenceTransformer(<adapter folder>, trust_remote_code=True)`` to ``mteb.evaluate``
(docs/evaluation.md).

Retrieval here is exact cosine search in numpy over the corpus vectors, not Qdrant: the eval corpora are a
few thousand passages (a (Q, N) matrix product takes milliseconds), results are exact and deterministic (no
HNSW approximation mixed into the comparison) and five systems need five vector sets held side by side.
Qdrant's own cost is measured separately (``benchmarks/index_throughput.py``: ~1.5 ms per query); the
search modes, which only exist in Qdrant, are measured through it (``search_modes``).
"""
