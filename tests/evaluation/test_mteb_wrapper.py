"""The MTEB wrapper against mteb's EncoderProtocol, offline (mteb itself and its tasks are not installed)."""

from __future__ import annotations

import inspect
from enum import Enum
from types import SimpleNamespace

import numpy as np
import pytest
from torch.utils.data import DataLoader

from evaluation.mteb_wrapper import MTEBEncoder, task_for, texts_of

TEXTS = ["How do I reverse a list?", "Lists have a reverse() method.", "Steam trains burn coal.", "Tomatoes need sun."]


class PromptType(str, Enum):  # mirrors mteb.types.PromptType
    query = "query"
    document = "document"


def batches(texts, size=3):
    """What mteb 2.x passes: a DataLoader of BatchedInput dicts ({"text": [...]})."""
    return DataLoader([{"text": t} for t in texts], batch_size=size)


def test_encode_signature_matches_mteb_encoder_protocol():
    params = inspect.signature(MTEBEncoder.encode).parameters
    assert list(params)[:2] == ["self", "inputs"]
    for name in ("task_metadata", "hf_split", "hf_subset", "prompt_type"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["prompt_type"].default is None
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for method in ("similarity", "similarity_pairwise"):
        assert callable(getattr(MTEBEncoder, method))
    assert isinstance(inspect.getattr_static(MTEBEncoder, "mteb_model_meta"), property)


def test_inputs_and_prompt_types():
    assert texts_of(batches(TEXTS)) == TEXTS
    assert texts_of(TEXTS) == TEXTS and texts_of("one") == ["one"]
    with pytest.raises(TypeError, match="'text'"):
        texts_of([{"image": 1}])
    assert [task_for(p) for p in (PromptType.query, PromptType.document, "passage", None)] == ["query", "document", "document", "similarity"]


def test_encode_uses_the_instruction_for_each_prompt_type(smol_encoder):
    model = MTEBEncoder(smol_encoder, batch_size=2)
    meta = SimpleNamespace(name="SciFact", type="Retrieval")
    queries = model.encode(batches(TEXTS), task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=PromptType.query)
    docs = model.encode(batches(TEXTS), task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=PromptType.document)
    assert queries.shape == (4, smol_encoder.dim) and queries.dtype == np.float32
    np.testing.assert_allclose(queries, smol_encoder.encode(TEXTS, task="query"), atol=1e-5)
    np.testing.assert_allclose(docs, smol_encoder.encode(TEXTS, task="document"), atol=1e-5)
    assert not np.allclose(queries, docs, atol=1e-3)  # different instructions -> different vectors
    legacy = model.encode(TEXTS, task_name="STS12")  # mteb 1.x call style -> similarity instruction
    np.testing.assert_allclose(legacy, smol_encoder.encode(TEXTS, task="similarity"), atol=1e-5)


def test_similarity_is_cosine():
    model = MTEBEncoder(encoder=None)  # similarity needs no model
    a = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    b = np.array([[3.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(model.similarity(a, b), [[1.0, 2 ** -0.5], [0.0, 2 ** -0.5]], atol=1e-6)
    np.testing.assert_allclose(model.similarity_pairwise(a, b), [1.0, 2 ** -0.5], atol=1e-6)


def test_model_meta_is_none_without_mteb(smol_encoder):
    import importlib.util

    meta = MTEBEncoder(smol_encoder).mteb_model_meta
    if importlib.util.find_spec("mteb") is None:
        assert meta is None
    else:
        assert meta.name.startswith("gensearch/")
