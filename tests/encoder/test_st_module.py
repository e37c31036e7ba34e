"""An adapter folder is a sentence-transformers model: ``SentenceTransformer(folder)`` gives load_encoder()'s vectors.

Real SmolLM2-135M test backbone and its shipped adapter, fp32 on CPU. mteb takes the model as it is
(mteb itself is optional: that test runs where it is installed).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from encoder import load_encoder
from encoder.adapter import ADAPTERS_DIR
from encoder.st_module import LLM2VecGenModule

TEXTS = ["How do I reverse a list?", "Lists have a reverse() method.", "Steam trains burn coal.", "Tomatoes need sun."]
SHIPPED = ADAPTERS_DIR / "smollm2-135m-instruct"
COSINE = 0.9999


def load_st(folder) -> SentenceTransformer:
    return SentenceTransformer(str(folder), trust_remote_code=True, device="cpu", model_kwargs={"dtype": torch.float32})


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def st_model() -> SentenceTransformer:
    return load_st(SHIPPED)


@pytest.mark.parametrize("task", ["query", "document", "similarity"])
def test_shipped_adapter_encodes_like_load_encoder(st_model, smol_encoder, task):
    vectors = st_model.encode(TEXTS, prompt_name=task)
    assert vectors.shape == (len(TEXTS), smol_encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # the Normalize module
    assert cosines(vectors, smol_encoder.encode(TEXTS, task=task)).min() >= COSINE


def test_model_is_our_module_then_normalize_with_the_instructions_as_prompts(st_model, smol_encoder):
    assert [type(m).__name__ for m in st_model] == ["LLM2VecGenModule", "Normalize"]
    assert {k: st_model.prompts[k] for k in smol_encoder.instructions} == smol_encoder.instructions
    assert st_model.default_prompt_name == "similarity" and st_model.similarity_fn_name == "cosine"
    assert st_model.get_embedding_dimension() == smol_encoder.dim and st_model.max_seq_length == smol_encoder.max_length
    assert st_model.model_card_data.model_name == "gensearch/llm2vec-gen-smollm2-135m-instruct"


def test_encode_query_encode_document_and_plain_encode_pick_their_instructions(st_model, smol_encoder):
    assert cosines(st_model.encode_query(TEXTS), smol_encoder.encode(TEXTS, task="query")).min() >= COSINE
    assert cosines(st_model.encode_document(TEXTS), smol_encoder.encode(TEXTS, task="document")).min() >= COSINE
    assert cosines(st_model.encode(TEXTS), smol_encoder.encode(TEXTS, task="similarity")).min() >= COSINE


def test_a_saved_adapter_folder_loads_as_a_sentence_transformer(smol_encoder, tmp_path):
    folder = smol_encoder.save(tmp_path / "adapter")
    assert {"modules.json", "config_sentence_transformers.json", "1_Normalize"} <= {p.name for p in folder.iterdir()}
    model = load_st(folder)
    assert cosines(model.encode_query(TEXTS), smol_encoder.encode(TEXTS, task="query")).min() >= COSINE


def test_sentence_transformer_save_keeps_an_adapter_folder(st_model, smol_encoder, tmp_path):
    st_model.save(str(tmp_path / "saved"))
    assert load_encoder(str(tmp_path / "saved"), dtype="float32", device="cpu").config == smol_encoder.config
    again = load_st(tmp_path / "saved")
    assert cosines(again.encode_document(TEXTS), smol_encoder.encode(TEXTS, task="document")).min() >= COSINE


@pytest.mark.slow
def test_the_shipped_default_adapter_encodes_like_load_encoder():
    folder = ADAPTERS_DIR / "qwen2.5-coder-0.5b-instruct"
    encoder, model = load_encoder(str(folder), dtype="float32", device="cpu"), load_st(folder)
    for task in ("query", "document"):
        assert cosines(model.encode(TEXTS, prompt_name=task), encoder.encode(TEXTS, task=task)).min() >= COSINE, task


def test_shipped_adapters_carry_their_instructions_as_prompts():
    for folder in sorted(p for p in ADAPTERS_DIR.iterdir() if p.is_dir()):
        instructions = json.loads((folder / "config.json").read_text())["instructions"]
        config = json.loads((folder / "config_sentence_transformers.json").read_text())
        assert config["prompts"] == instructions, folder.name
        modules = json.loads((folder / "modules.json").read_text())
        assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["LLM2VecGenModule", "Normalize"]


def test_loading_asks_for_trust_remote_code():
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        SentenceTransformer(str(SHIPPED), device="cpu")


def test_decode_and_logit_lens_stay_one_call_on_the_loaded_encoder(st_model):
    encoder = st_model[0].encoder
    assert isinstance(st_model[0], LLM2VecGenModule)
    assert len(encoder.decode(TEXTS[:1], max_new_tokens=4)) == 1
    assert len(encoder.logit_lens(TEXTS[:1], top_k=2)[0]) == encoder.model.num_tokens


def test_mteb_calls_give_the_instruction_of_each_prompt_type(st_model, smol_encoder):
    """What mteb's SentenceTransformerEncoderWrapper calls: query / document prompts, none for STS-like tasks."""
    calls = {
        "query": st_model.encode_query(TEXTS, prompt=st_model.prompts["query"]),
        "document": st_model.encode_document(TEXTS, prompt=st_model.prompts["document"]),
        "similarity": st_model.encode(TEXTS, prompt=None),
    }
    for task, vectors in calls.items():
        assert cosines(vectors, smol_encoder.encode(TEXTS, task=task)).min() >= COSINE, task


def test_mteb_takes_the_sentence_transformer_directly(st_model, smol_encoder):
    mteb = pytest.importorskip("mteb")
    from datasets import Dataset
    from torch.utils.data import DataLoader

    model = mteb.models.SentenceTransformerEncoderWrapper(st_model)
    batches = DataLoader(Dataset.from_dict({"text": TEXTS}), batch_size=3)
    for prompt_type, task, meta in [
        (mteb.types.PromptType.query, "query", SimpleNamespace(name="SciFact", type="Retrieval")),
        (mteb.types.PromptType.document, "document", SimpleNamespace(name="SciFact", type="Retrieval")),
        (None, "similarity", SimpleNamespace(name="STS12", type="STS")),
    ]:
        vectors = np.asarray(model.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=prompt_type))
        assert cosines(vectors, smol_encoder.encode(TEXTS, task=task)).min() >= COSINE, task
    assert model.mteb_model_meta.name == "gensearch/llm2vec-gen-smollm2-135m-instruct"
    np.testing.assert_allclose(np.asarray(model.similarity(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32))), np.eye(2), atol=1e-6)


def test_the_fused_default_exports_as_a_sentence_transformer_with_the_same_vectors(tmp_path, monkeypatch):
    """Issue row: the product's default (llm2vec-gen-fused) was not a sentence-transformers model. Exported, it is a
    Router: fused LLM2Vec-Gen + teacher queries, the teacher's own modules for documents; vector for vector."""
    from sentence_transformers import SentenceTransformer
    from typer.testing import CliRunner

    from app.cli import cli
    from encoder import get_settings, load_encoder

    monkeypatch.setenv("GENSEARCH_BACKBONE", "test")
    monkeypatch.setenv("GENSEARCH_DTYPE", "float32")
    monkeypatch.setenv("GENSEARCH_DEVICE", "cpu")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["models", "export", str(tmp_path / "fused")])
        assert result.exit_code == 0, result.output
        model = SentenceTransformer(str(tmp_path / "fused"), trust_remote_code=True, device="cpu")
        ours = load_encoder("llm2vec-gen-fused")
        queries = ["how do I read a file?", "What is a generator in Python?"]
        documents = ["open() returns a file object; read() reads it.", "A generator yields values lazily, one at a time."]
        for served, local in ((model.encode_query(queries), ours.encode(queries, task="query")),
                              (model.encode_document(documents), ours.encode(documents, task="document"))):
            assert float((served * local).sum(1).min()) >= 0.9999
        again = CliRunner().invoke(cli, ["models", "export", str(tmp_path / "fused")])
        assert again.exit_code == 2 and "not empty" in again.output
    finally:
        get_settings.cache_clear()
