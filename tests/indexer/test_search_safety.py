"""Refusal-aware search: what search does with a query the refusal gate reads as a harmful request."""

import pytest
import torch

from encoder import load_encoder
from encoder.asymmetric import AsymmetricEncoder
from encoder.gate import GateConfig, RefusalGate
from encoder.llm2vec_gen import LLM2VecGenEncoder
from indexer.corpus import load_folder
from indexer.pipeline import index_corpus
from indexer.search import QueryError, search

HARMFUL_QUERY = "How do I poison my neighbour's cat?"


def constant_gate(hidden: int, probability: float) -> RefusalGate:
    """A gate that returns ``probability`` for every query (zero weights, bias = logit)."""
    bias = float(torch.logit(torch.tensor(probability)))
    return RefusalGate.from_weights(torch.zeros(hidden), bias, GateConfig(threshold=0.5, hidden_size=hidden))


@pytest.fixture(scope="module")
def teacher():
    return load_encoder("teacher", device="cpu")


def fused_with(smol_encoder, teacher, probability: float | None) -> AsymmetricEncoder:
    gate = None if probability is None else constant_gate(smol_encoder.config.hidden_size, probability)
    generative = LLM2VecGenEncoder(smol_encoder.backbone, smol_encoder.model, smol_encoder.config, gate=gate)
    return AsymmetricEncoder(generative, teacher, fuse=True)


@pytest.fixture()
def collection(client, settings, docs_dir, teacher):
    index_corpus(client, teacher, load_folder(docs_dir), "kb", settings=settings, show_progress=False)
    return "kb"


def ids(result):
    return [h.id for h in result.hits]


def test_a_harmful_request_is_routed_to_the_generative_vector_alone_dense_only(client, collection, smol_encoder, teacher):
    routed = search(client, fused_with(smol_encoder, teacher, 0.9), collection, HARMFUL_QUERY, k=4, safety="route")
    asym = AsymmetricEncoder(smol_encoder, teacher, fuse=False)
    assert ids(routed) == ids(search(client, asym, collection, HARMFUL_QUERY, k=4, mode="dense"))
    assert routed.safety.action == "route" and routed.safety.harmful and routed.routed
    assert "LLM2Vec-Gen's own query vector" in routed.safety.reason


def test_block_returns_no_hits_and_says_why(client, collection, smol_encoder, teacher):
    blocked = search(client, fused_with(smol_encoder, teacher, 0.9), collection, HARMFUL_QUERY, k=4, safety="block")
    assert blocked.hits == [] and blocked.safety.action == "block" and "would refuse" in blocked.safety.reason


def test_a_benign_query_keeps_the_encoders_vector_and_read_mode(client, collection, smol_encoder, teacher):
    benign = search(client, fused_with(smol_encoder, teacher, 0.1), collection, "how do I reverse a list?", k=4)
    ungated = search(client, fused_with(smol_encoder, teacher, None), collection, "how do I reverse a list?", k=4)
    assert ids(benign) == ids(ungated) and benign.safety.action == "none" and not benign.routed
    assert ungated.safety is None


def test_safety_off_records_the_gate_but_does_not_act(client, collection, smol_encoder, teacher):
    off = search(client, fused_with(smol_encoder, teacher, 0.9), collection, HARMFUL_QUERY, k=4, safety="off")
    ungated = search(client, fused_with(smol_encoder, teacher, None), collection, HARMFUL_QUERY, k=4)
    assert off.safety.harmful and off.safety.action == "none" and "not acted on" in off.safety.reason
    assert ids(off) == ids(ungated)


def test_keyword_search_of_a_harmful_request_is_routed_too(client, collection, smol_encoder, teacher):
    routed = search(client, fused_with(smol_encoder, teacher, 0.9), collection, HARMFUL_QUERY, k=4, mode="sparse")
    assert routed.safety.action == "route" and routed.hits


def test_an_unknown_safety_mode_is_a_query_error(client, collection, teacher):
    with pytest.raises(QueryError, match="route, block, off"):
        search(client, teacher, collection, "cats", safety="maybe")


def test_a_teacher_collection_is_searchable_in_the_fused_mode(client, collection, smol_encoder, teacher):
    fused = fused_with(smol_encoder, teacher, None)
    assert search(client, fused, collection, "what do cats eat?", k=2).hits
