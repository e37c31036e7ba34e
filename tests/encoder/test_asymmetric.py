"""The asym / fused retrieval modes: LLM2Vec-Gen queries against teacher-embedded documents (real SmolLM2 + teacher)."""

import numpy as np
import pytest

from encoder import AdapterError, Settings, load_encoder
from encoder.asymmetric import AsymmetricEncoder, fuse

QUERIES = ["How do I reverse a list in Python?", "Best pizza in Naples"]
DOCUMENTS = ["Use reversed(xs) or xs[::-1] to reverse a list.", "Naples is known for its Neapolitan pizza."]


@pytest.fixture(scope="module")
def teacher():
    return load_encoder("teacher", device="cpu")


@pytest.fixture(scope="module")
def fused(smol_encoder, teacher):
    return AsymmetricEncoder(smol_encoder, teacher, fuse=True)


def test_documents_are_the_teachers_vectors(fused, teacher):
    np.testing.assert_allclose(fused.encode(DOCUMENTS, task="document"), teacher.encode(DOCUMENTS, task="document"), atol=1e-6)


def test_fused_query_is_the_normalised_sum_of_both_query_vectors(fused, smol_encoder, teacher):
    both = smol_encoder.encode(QUERIES, task="query") + teacher.encode(QUERIES, task="query")
    expected = both / np.linalg.norm(both, axis=1, keepdims=True)
    vectors = fused.encode(QUERIES, task="query")
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert vectors.dtype == np.float32 and vectors.shape == (2, teacher.dim)


def test_the_teachers_weight_scales_its_share_of_the_fused_query(smol_encoder, teacher):
    generative, own = smol_encoder.encode(QUERIES, task="query"), teacher.encode(QUERIES, task="query")
    heavy = AsymmetricEncoder(smol_encoder, teacher, fuse=True, teacher_weight=4.0)
    both = 4.0 * own + generative
    np.testing.assert_allclose(heavy.encode(QUERIES, task="query"), both / np.linalg.norm(both, axis=1, keepdims=True), atol=1e-5)
    cos_to_teacher = lambda w: (fuse(generative, own, w) * own).sum(1)  # noqa: E731
    assert (cos_to_teacher(0.0) < cos_to_teacher(1.0)).all() and (cos_to_teacher(1.0) < cos_to_teacher(4.0)).all()
    np.testing.assert_allclose(fuse(generative, own, 0.0), generative, atol=1e-6)  # weight 0: the asym mode's vector


@pytest.mark.parametrize("weight", [-1.0, float("inf"), float("nan")])
def test_a_negative_or_infinite_teacher_weight_is_refused(smol_encoder, teacher, weight):
    with pytest.raises(ValueError, match="finite number >= 0"):
        AsymmetricEncoder(smol_encoder, teacher, teacher_weight=weight)


def test_asym_query_is_the_llm2vec_gen_vector_alone(smol_encoder, teacher):
    asym = AsymmetricEncoder(smol_encoder, teacher, fuse=False)
    assert asym.name == "llm2vec-gen-asym"
    np.testing.assert_allclose(asym.encode(QUERIES), smol_encoder.encode(QUERIES), atol=1e-6)


def test_queries_decode_through_the_generative_part(fused, smol_encoder):
    assert fused.generative is smol_encoder
    assert smol_encoder.generative is smol_encoder
    assert fused.name == "llm2vec-gen-fused" and fused.dim == smol_encoder.dim


def test_each_task_is_tokenised_by_the_model_that_reads_it(fused, smol_encoder, teacher):
    assert fused.tokenize(DOCUMENTS, "document") == teacher.tokenize(DOCUMENTS, "document")
    assert fused.tokenize(QUERIES, "query") == smol_encoder.tokenize(QUERIES, "query")
    assert fused.tokenizer is teacher.tokenizer  # chunks are sized for the model that embeds them


def test_an_adapter_aligned_to_another_teacher_is_refused(smol_encoder):
    baseline = load_encoder("baseline", device="cpu")
    with pytest.raises(AdapterError, match="aligned to all-mpnet-base-v2"):
        AsymmetricEncoder(smol_encoder, baseline)


def test_load_encoder_builds_each_mode_on_the_configured_backbone():
    settings = Settings(_env_file=None, backbone="test", dtype="float32", device="cpu")
    encoder = load_encoder("llm2vec-gen-fused", settings=settings)
    assert isinstance(encoder, AsymmetricEncoder) and encoder.fuse
    assert encoder.generative.backbone.name == "smollm2-135m-instruct" and encoder.teacher.name == "all-mpnet-base-v2"
    assert not load_encoder("llm2vec-gen-asym", settings=settings).fuse
    assert encoder.teacher_weight == settings.fusion_weight  # the default is the development sweep's pick
    assert load_encoder("llm2vec-gen-fused", settings=settings.model_copy(update={"fusion_weight": 2.5})).teacher_weight == 2.5
