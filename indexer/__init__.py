"""gensearch indexer: documents -> chunks -> LLM2Vec-Gen (or baseline) vectors -> Qdrant, and back.

    from encoder import load_encoder
    from indexer.corpus import load_folder, python_docs_dir
    from indexer.pipeline import index_corpus
    from indexer.search import search
    from indexer.rag import ask, retriever
    from indexer.store import connect

    encoder = load_encoder()
    with connect() as client:                       # embedded store, or GENSEARCH_QDRANT_URL
        index_corpus(client, encoder, load_folder(python_docs_dir(), glob="faq/*"), "python-docs")
        hits = search(client, encoder, "python-docs", "how do I copy a list?", k=5).hits
        answer = ask(client, encoder, "python-docs", "How do I copy a list?")

Modules, one job each: ``formats`` (file bytes -> text with '#' headings), ``corpus`` (folders,
skip reasons, Python docs), ``chunking`` (LlamaIndex parsers, content ids), ``embedding`` (vectors
+ logit-lens words in one pass), ``identity`` (which encoder made a vector), ``store`` (Qdrant
client, collections), ``pipeline`` (idempotent, resumable indexing), ``distributed`` (the same on Ray
workers), ``search``, ``llama``
(LlamaIndex adapters), ``rag`` (retriever, citation query engine), ``cli``.
This package imports nothing heavy on purpose: ``gensearch --help`` stays fast.
"""
