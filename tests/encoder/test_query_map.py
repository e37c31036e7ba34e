"""A collection's query map: the residual map of fused query vectors that `gensearch adapt` learns."""

from __future__ import annotations

import numpy as np
import pytest

from encoder import AdapterError, LLM2VecGenEncoder, load_encoder
from encoder.asymmetric import AsymmetricEncoder
from encoder.query_map import QUERY_MAP, QueryMap, load_query_map

QUERIES = ["How do I reverse a list?", "What do cats eat?"]


def test_a_zero_map_is_the_identity_and_a_map_keeps_vectors_unit():
    q = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(QueryMap(np.zeros((8, 8)))(q), q, atol=1e-6)
    moved = QueryMap(np.random.default_rng(1).normal(scale=0.1, size=(8, 8)))(q)
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(moved, q)


def test_a_folder_without_a_map_has_none_and_a_wrong_one_is_refused(tmp_path):
    assert load_query_map(tmp_path, 8) is None
    QueryMap(np.eye(4)).save(tmp_path)
    with pytest.raises(AdapterError, match="does not fit 8-d"):
        load_query_map(tmp_path, 8)
    (tmp_path / QUERY_MAP).write_bytes(b"not safetensors")
    with pytest.raises(AdapterError, match="corrupt"):
        load_query_map(tmp_path, 4)


@pytest.fixture(scope="module")
def teacher(smol_encoder):
    return load_encoder(smol_encoder.config.teacher, device="cpu")


def test_the_map_travels_with_the_adapter_and_moves_only_benign_fused_queries(smol_encoder, teacher, tmp_path):
    plain = AsymmetricEncoder(smol_encoder, teacher, fuse=True)
    before = plain.query_vectors(QUERIES)
    delta = np.random.default_rng(0).normal(scale=0.05, size=(smol_encoder.dim, smol_encoder.dim)).astype(np.float32)
    smol_encoder.query_map = QueryMap(delta)
    try:
        smol_encoder.save(tmp_path / "adapter")
    finally:
        smol_encoder.query_map = None
    loaded = AsymmetricEncoder(LLM2VecGenEncoder.load(tmp_path / "adapter", smol_encoder.backbone), teacher, fuse=True)
    after = loaded.query_vectors(QUERIES)
    np.testing.assert_allclose(after.vectors, QueryMap(delta)(before.vectors), atol=1e-4)
    np.testing.assert_allclose(loaded.encode(QUERIES, task="query"), after.vectors, atol=1e-4)
    np.testing.assert_allclose(after.generative, before.generative, atol=1e-5), "LLM2Vec-Gen's own (and routed) vectors are not mapped"
    np.testing.assert_allclose(loaded.encode(["a passage"], task="document"), teacher.encode(["a passage"], task="document"), atol=1e-6)
