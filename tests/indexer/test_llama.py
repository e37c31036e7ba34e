"""LlamaIndex adapters: embedding (query vs document, batching), QdrantVectorStore + VectorStoreIndex, RAG with citations."""

from __future__ import annotations

import os

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.vector_stores.qdrant import QdrantVectorStore

from indexer.corpus import load_folder
from indexer.llama import BackboneLLM, GensearchEmbedding, hit_of, node_of
from indexer.pipeline import index_corpus
from indexer.rag import ask, backbone_for, retriever
from indexer.search import Hit, QueryError, search

from .conftest import write_docs


def test_embedding_applies_query_and_document_tasks(smol_encoder):
    embed = GensearchEmbedding(smol_encoder)
    text = "How do I reverse a list?"
    query = np.array(embed.get_query_embedding(text))
    document = np.array(embed.get_text_embedding(text))
    np.testing.assert_allclose(query, smol_encoder.encode([text], task="query")[0], atol=1e-5)
    np.testing.assert_allclose(document, smol_encoder.encode([text], task="document")[0], atol=1e-5)
    assert not np.allclose(query, document, atol=1e-3)  # different instructions -> different vectors


def test_embedding_batches_documents(smol_encoder, monkeypatch):
    calls = []
    original = smol_encoder.encode

    def spy(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(smol_encoder, "encode", spy)
    embed = GensearchEmbedding(smol_encoder, embed_batch_size=4)
    vectors = embed.get_text_embedding_batch([f"text {i}" for i in range(6)])
    assert len(vectors) == 6 and len(vectors[0]) == smol_encoder.dim
    assert calls == [4, 2]


@pytest.fixture()
def local_client(settings):
    """LlamaIndex's QdrantVectorStore needs a qdrant-client client: a server or the local mode (not the Edge facade)."""
    from indexer.store import connect

    with connect(settings.model_copy(update={"qdrant_engine": "local"})) as c:
        yield c


def test_vector_store_index_round_trip(local_client, baseline_encoder):
    client = local_client
    nodes = [
        TextNode(text="Cats purr and chase mice.", id_="00000000-0000-0000-0000-000000000001"),
        TextNode(text="To reverse a Python list call items.reverse().", id_="00000000-0000-0000-0000-000000000002"),
        TextNode(text="Steam locomotives burn coal.", id_="00000000-0000-0000-0000-000000000003"),
    ]
    store = QdrantVectorStore(client=client, collection_name="llama")
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=GensearchEmbedding(baseline_encoder))
    hits = index.as_retriever(similarity_top_k=2).retrieve("reversing a list in python")
    assert hits[0].node.node_id == "00000000-0000-0000-0000-000000000002"


def test_retriever_over_a_gensearch_collection(client, docs_dir, settings, baseline_encoder):
    index_corpus(client, baseline_encoder, load_folder(docs_dir), "docs", settings=settings, show_progress=False)
    hits = retriever(client, "docs", baseline_encoder, k=3).retrieve("what do cats eat?")
    assert len(hits) == 3
    top = hits[0].node
    assert os.path.basename(top.metadata["source"]) == "cats.md" and "Feeding" in top.metadata["section"]
    assert "fish" in top.get_content() and top.node_id  # text comes back from the payload


def test_llm_reuses_the_encoder_backbone(smol_encoder, settings):
    llm = BackboneLLM(backbone_for(smol_encoder, settings), max_new_tokens=4)
    assert llm._backbone is smol_encoder.backbone  # no second copy of the weights
    out = llm.complete("Say hi.")
    assert isinstance(out.text, str) and len(smol_encoder.backbone.tokenizer.encode(out.text)) <= 5


def test_a_hit_survives_the_trip_through_a_llama_index_node():
    hit = Hit("p1", 0.5, "/kb/a.md", "A", "A › B", "Source code lives here.\nMore.", ["code"], 2, "benign")
    assert hit_of(NodeWithScore(node=node_of(hit), score=hit.score)) == hit
    labelled = NodeWithScore(node=TextNode(id_="copy", text="Source 3:\n" + hit.text, metadata=node_of(hit).metadata), score=0.5)
    assert hit_of(labelled) == hit, "the query engine's 'Source n:' label and node copy are undone"


def test_ask_answers_with_citations(client, tmp_path, settings, smol_encoder):
    root = write_docs(tmp_path / "kb", {
        "lists.md": "# Lists\n\nTo reverse a list in Python call items.reverse().\n",
        "cats.md": "# Cats\n\nCats purr.\n",
    })
    index_corpus(client, smol_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    answer = ask(client, smol_encoder, "kb", "How do I reverse a list in Python?", k=2, max_new_tokens=8, settings=settings)
    assert answer.answer.strip()
    assert [c.n for c in answer.citations] == [1, 2]
    assert {os.path.basename(c.source) for c in answer.citations} == {"lists.md", "cats.md"}
    assert all(c.text and not c.text.startswith("Source") for c in answer.citations)
    hits = search(client, smol_encoder, "kb", "How do I reverse a list in Python?", k=2).hits
    assert {c.id for c in answer.citations} == {h.id for h in hits}, "a citation is the search hit itself"
    with pytest.raises(QueryError, match="empty"):
        ask(client, smol_encoder, "kb", "   ", settings=settings)


@pytest.mark.parametrize("engine", ["transformers", "ctranslate2"])
def test_the_llm_streams_the_same_answer_it_completes(smol_encoder, settings, engine):
    """Issue row: stream_complete gave the whole answer at once. Now the text arrives piece by piece, and
    the pieces joined are the completed answer (greedy, the same engine)."""
    from encoder.generation import load_engine

    backbone = backbone_for(smol_encoder, settings)
    llm = BackboneLLM(backbone, engine=load_engine(engine, backbone, settings=settings, batch_size=1), max_new_tokens=24)
    pieces = [r.delta for r in llm.stream_complete("Name three colours.")]
    assert len(pieces) > 3
    assert "".join(pieces).strip() == llm.complete("Name three colours.").text.strip()


def test_ask_stream_writes_the_answer_and_then_cites(client, tmp_path, settings, smol_encoder):
    from indexer.rag import ask_stream, llm_for

    root = write_docs(tmp_path / "kb", {"lists.md": "# Lists\n\nTo reverse a list in Python call items.reverse().\n"})
    index_corpus(client, smol_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    assert llm_for(smol_encoder, settings)._engine.name == ("ctranslate2" if settings.generation_engine == "auto" else settings.generation_engine)
    stream = ask_stream(client, smol_encoder, "kb", "How do I reverse a list?", k=1, max_new_tokens=16, settings=settings)
    assert len(stream.sources) == 1  # retrieved before the first word
    pieces = list(stream)
    answer = stream.answer()
    assert len(pieces) > 1 and answer.answer == "".join(pieces).strip() and [c.n for c in answer.citations] == [1]


def test_llama_index_own_vector_store_reads_a_gensearch_collection(docs_dir, settings, baseline_encoder):
    """Our collections stay readable by LlamaIndex's QdrantVectorStore (text in the payload's ``text``, the dense vector
    unnamed), for teams that already use it. It applies no permission filter: gensearch's retriever does. It takes a
    qdrant-client client: a server, or (here) a local-mode store; an Edge store is read through gensearch's retriever."""
    from indexer.store import connect

    settings = settings.model_copy(update={"qdrant_engine": "local"})
    with connect(settings) as client:
        index_corpus(client, baseline_encoder, load_folder(docs_dir), "docs", settings=settings, show_progress=False)
        index = VectorStoreIndex.from_vector_store(QdrantVectorStore(client=client, collection_name="docs"), embed_model=GensearchEmbedding(baseline_encoder))
        hits = index.as_retriever(similarity_top_k=2).retrieve("what do cats eat?")
    assert os.path.basename(hits[0].node.metadata["source"]) == "cats.md" and "fish" in hits[0].node.get_content()


def test_a_generation_failure_is_raised_not_taken_for_the_end_of_the_answer(smol_encoder, settings):
    from encoder.generation import load_engine

    engine = load_engine("transformers", backbone_for(smol_encoder, settings), settings=settings, batch_size=1)
    with pytest.raises(RuntimeError, match="generation failed"):
        list(engine.stream_ids([1, 2, 3], max_new_tokens=-1))
