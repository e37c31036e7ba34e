"""gensearch indexer: documents -> chunks -> LLM2Vec-Gen (or baseline) vectors -> Qdrant, and back.

    from encoder import Settings, load_encoder
    from indexer.corpus import load_folder, python_docs_dir
    from indexer.pipeline import index_corpus
    from indexer.search import search
    from indexer.rag import ask, retriever
    from indexer.store import connect

    settings = Settings()                           # the environment: GENSEARCH_*
    encoder = load_encoder(settings=settings)
    with connect(settings) as client:               # embedded store, or GENSEARCH_QDRANT_URL
        index_corpus(client, encoder, load_folder(python_docs_dir(settings), glob="faq/*"), "python-docs", settings=settings)
        hits = search(client, encoder, "python-docs", "how do I copy a list?", k=5).hits
        answer = ask(client, encoder, "python-docs", "How do I copy a list?", settings=settings)

Modules, one job each: ``formats`` (file bytes -> text with '#' headings), ``corpus`` (folders,
skip reasons, Python docs), ``chunking`` (LlamaIndex parsers, content ids), ``embedding`` (vectors
+ logit-lens words in one pass), ``identity`` (which encoder made a vector), ``store`` (Qdrant
client, collections), ``pipeline`` (idempotent, resumable indexing), ``distributed`` (the same on Ray
workers), ``search``, ``llama``
(LlamaIndex adapters), ``rag`` (retriever, citation query engine), ``cli``.
This package imports nothing heavy on purpose: ``gensearch --help`` stays fast.
"""
