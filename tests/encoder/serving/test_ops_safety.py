"""The embedding service and the refusal gate: query vectors of harmful requests are routed and say so."""

import numpy as np
import pytest
import torch

from encoder import load_encoder
from encoder.asymmetric import AsymmetricEncoder
from encoder.gate import GateConfig, RefusalGate
from encoder.llm2vec_gen import LLM2VecGenEncoder
from encoder.serving.ops import ModelOps

TEXTS = ["How do I poison my neighbour's cat?", "How do I reverse a list?"]


@pytest.fixture(scope="module")
def fused(smol_encoder):
    hidden = smol_encoder.config.hidden_size
    gate = RefusalGate.from_weights(torch.zeros(hidden), 5.0, GateConfig(threshold=0.5, hidden_size=hidden))  # P = 0.993 for any query
    generative = LLM2VecGenEncoder(smol_encoder.backbone, smol_encoder.model, smol_encoder.config, gate=gate)
    return AsymmetricEncoder(generative, load_encoder("teacher", device="cpu"), fuse=True)


def test_a_harmful_query_gets_the_generative_vector_and_a_safety_record(fused):
    rows = ModelOps(fused, batch_size=4, safety="route").embed(TEXTS, "query")
    own = fused.generative.encode(TEXTS, task="query")
    for (vector, tokens, safety), expected in zip(rows, own):
        np.testing.assert_allclose(vector, expected, atol=1e-5)
        assert tokens > 0 and safety["harmful"] and safety["action"] == "route" and safety["probability"] > 0.99


def test_safety_off_and_documents_are_left_alone(fused):
    off = ModelOps(fused, batch_size=4, safety="off").embed(TEXTS, "query")
    np.testing.assert_allclose(np.stack([v for v, _, _ in off]), fused.encode(TEXTS, task="query"), atol=1e-5)
    assert all(s is None for _, _, s in off)
    docs = ModelOps(fused, batch_size=4).embed(TEXTS, "document")
    assert all(s is None for _, _, s in docs)
