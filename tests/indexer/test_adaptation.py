"""A collection's own query adapter: what `gensearch adapt` samples from a collection and records in it."""

from __future__ import annotations

import pytest
from qdrant_client import models

from indexer.adaptation import adaptation, check_adaptable, record_adapter, sample_chunks, undo_adapter
from indexer.errors import StoreError
from indexer.identity import EncoderIdentity, loadable_adapter
from indexer.store import collection_identity, ensure_collection

FUSED = EncoderIdentity("llm2vec-gen-fused", "all-mpnet-base-v2", None, 4)


def make_collection(client, name: str = "kb", identity: EncoderIdentity = FUSED, n: int = 12) -> None:
    ensure_collection(client, name, identity)
    client.upsert(name, [models.PointStruct(id=i + 1, vector=[1.0, i, 0.5, -1.0], payload={"text": f"chunk {i}", "source": f"d{i}.md"})
                         for i in range(n)])


def test_chunks_come_with_their_text_and_stored_vector(client):
    make_collection(client)
    rows = sample_chunks(client, "kb", None)
    assert len(rows) == 12
    by_text = {text: vector for _, text, vector in rows}
    stored = [1.0, 3.0, 0.5, -1.0]
    norm = sum(v * v for v in stored) ** 0.5
    assert by_text["chunk 3"] == pytest.approx([v / norm for v in stored], abs=1e-6), "cosine collections keep unit vectors"



def test_a_sample_is_seeded_and_at_most_n(client):
    make_collection(client)
    first, again = sample_chunks(client, "kb", 5, seed=1), sample_chunks(client, "kb", 5, seed=1)
    assert len(first) == 5 and [r[0] for r in first] == [r[0] for r in again]


def test_only_teacher_embedded_collections_can_be_adapted(client):
    make_collection(client, "symmetric", EncoderIdentity("llm2vec-gen", "qwen2.5-coder-0.5b-instruct", "abc", 4))
    with pytest.raises(StoreError, match="only collections of the fused mode"):
        check_adaptable(client, "symmetric")
    make_collection(client)
    check_adaptable(client, "kb")


def test_an_adapter_recorded_in_the_collection_is_what_its_queries_load_and_undo_restores(client, tmp_path):
    make_collection(client)
    folder = tmp_path / "adapter"
    folder.mkdir()
    assert adaptation(client, "kb") is None
    record_adapter(client, "kb", folder, {"fusion_weight": 4.0})
    identity = collection_identity(client, "kb")
    assert identity == FUSED, "the adapter is not part of what must match: documents are the teacher's"
    assert loadable_adapter(identity) == str(folder.resolve())
    assert adaptation(client, "kb")["report"] == {"fusion_weight": 4.0}
    assert undo_adapter(client, "kb") == str(folder.resolve())
    assert loadable_adapter(collection_identity(client, "kb")) is None and adaptation(client, "kb") is None
    assert undo_adapter(client, "kb") is None


def test_adapting_twice_then_undoing_goes_back_to_before_the_first(client, tmp_path):
    make_collection(client)
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        record_adapter(client, "kb", tmp_path / name, {})
    assert loadable_adapter(collection_identity(client, "kb")) == str((tmp_path / "two").resolve())
    undo_adapter(client, "kb")
    assert loadable_adapter(collection_identity(client, "kb")) is None


def test_only_chunks_everyone_may_read_are_learned_from_unless_the_owner_says_so(client):
    make_collection(client, n=4)
    client.set_payload("kb", {"readers": ["group:hr"]}, points=[1, 2])
    client.set_payload("kb", {"readers": ["*"]}, points=[3])
    public = {text for _, text, _ in sample_chunks(client, "kb", None)}
    assert public == {"chunk 2", "chunk 3"}, "restricted chunks stay out; a chunk with no readers yet counts as public"
    assert len(sample_chunks(client, "kb", None, restricted=True)) == 4


def test_two_collections_adapted_differently_are_each_searched_with_their_own_adapter(client, settings, tmp_path, smol_encoder):
    """Real SmolLM2 adapters, one query map each, recorded in two collections of one store: opening a collection
    loads its own adapter, and their query vectors differ exactly by their maps."""
    import numpy as np

    from encoder.query_map import QueryMap
    from indexer.search import Collection

    settings = settings.model_copy(update={"backbone": "test", "dtype": "float32", "device": "cpu"})
    identity = EncoderIdentity("llm2vec-gen-fused", smol_encoder.config.teacher, None, smol_encoder.dim)
    rng = np.random.default_rng(0)
    for name in ("hr", "eng"):
        make_collection(client, name, identity, n=0)
        smol_encoder.query_map = QueryMap(rng.normal(scale=0.05, size=(smol_encoder.dim, smol_encoder.dim)))
        try:
            smol_encoder.save(tmp_path / name)
        finally:
            smol_encoder.query_map = None
        record_adapter(client, name, tmp_path / name, {})
    opened = {name: Collection.open(client, name, settings=settings) for name in ("hr", "eng")}
    query = ["How many days of leave do I have?"]
    vectors = {name: c.encoder.query_vectors(query) for name, c in opened.items()}
    assert {name: c.encoder.generative.source.name for name, c in opened.items()} == {"hr": "hr", "eng": "eng"}
    assert not np.allclose(vectors["hr"].vectors, vectors["eng"].vectors), "each collection's own map"
    np.testing.assert_allclose(vectors["hr"].generative, vectors["eng"].generative, atol=1e-5), "the same LLM2Vec-Gen underneath"
