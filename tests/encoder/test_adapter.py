"""Adapter save/load: round trip, and clear refusals for the wrong backbone, a bad file or version."""

import json

import numpy as np
import pytest

from encoder.adapter import AdapterError
from encoder.llm2vec_gen import LLM2VecGenEncoder

TEXTS = ["how do I open a file", "what is a dict"]


@pytest.fixture()
def saved(tiny_backbone, tmp_path):
    enc = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=3)
    enc.save(tmp_path / "adapter")
    return enc, tmp_path / "adapter"


def test_round_trip_gives_identical_embeddings(saved, tiny_backbone):
    enc, folder = saved
    loaded = LLM2VecGenEncoder.load(folder, tiny_backbone)
    assert sorted(p.name for p in folder.iterdir()) == [
        "1_Normalize", "adapter.safetensors", "config.json", "config_sentence_transformers.json", "modules.json"
    ]  # the adapter, and what makes the folder a sentence-transformers model (tests/encoder/test_st_module.py)
    np.testing.assert_allclose(loaded.encode(TEXTS), enc.encode(TEXTS), atol=1e-6)
    assert loaded.config.num_tokens == 4 and loaded.dim == 16


def test_config_names_backbone_and_instructions(saved):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"] == "tiny-llama" and config["backbone_sha256"] == "0" * 64
    assert config["instructions"]["query"].startswith("Generate a passage")
    assert config["format_version"] == 1


def test_adapter_for_another_backbone_is_refused(saved, smol_backbone):
    _, folder = saved
    with pytest.raises(AdapterError, match="trained on backbone tiny-llama"):
        LLM2VecGenEncoder.load(folder, smol_backbone)


def test_truncated_weights_are_refused(saved, tiny_backbone):
    _, folder = saved
    weights = folder / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AdapterError, match="corrupt or truncated"):
        LLM2VecGenEncoder.load(folder, tiny_backbone)


def test_unknown_format_version_is_refused(saved, tiny_backbone):
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    config["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterError, match="format version 99"):
        LLM2VecGenEncoder.load(folder, tiny_backbone)


def test_garbage_config_is_refused(saved, tiny_backbone):
    _, folder = saved
    (folder / "config.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(AdapterError, match="not valid JSON"):
        LLM2VecGenEncoder.load(folder, tiny_backbone)


def test_missing_folder_is_refused(tmp_path, tiny_backbone):
    with pytest.raises(AdapterError, match="config.json is missing"):
        LLM2VecGenEncoder.load(tmp_path / "nope", tiny_backbone)


def test_a_published_adapter_comes_before_the_shipped_one(saved, tmp_path):
    from encoder.adapter import ADAPTERS_DIR, default_adapter_path
    from encoder.settings import Settings

    shipped = default_adapter_path("qwen2.5-coder-0.5b-instruct")
    assert shipped == ADAPTERS_DIR / "qwen2.5-coder-0.5b-instruct", "the checkout ships one"
    published = tmp_path / "adapters"
    assert default_adapter_path("qwen2.5-coder-0.5b-instruct", published) == shipped, "nothing published yet"
    import shutil

    shutil.copytree(saved[1], published / "qwen2.5-coder-0.5b-instruct")
    assert default_adapter_path("qwen2.5-coder-0.5b-instruct", published) == published / "qwen2.5-coder-0.5b-instruct"
    assert default_adapter_path("no-such-backbone", published) is None
    settings = Settings(_env_file=None, cache_dir=tmp_path / "cache")
    assert settings.adapters_path == tmp_path / "cache" / "adapters", "publishing never writes into the installed package"
