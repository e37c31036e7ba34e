"""The app's model/store helpers, without Streamlit."""

from __future__ import annotations

import json

import pytest

from app import services


def test_load_report_absent_valid_and_broken(tmp_path):
    path = tmp_path / "eval.json"
    assert services.load_report(path) is None
    path.write_text(json.dumps({"date": "d", "systems": {"baseline": {}}}))
    assert services.load_report(path)["date"] == "d"
    path.write_text("[1, 2]")
    with pytest.raises(services.ReportError, match="no 'systems' table"):
        services.load_report(path)
    path.write_text("{")
    with pytest.raises(services.ReportError, match="re-run `gensearch eval all`"):
        services.load_report(path)


def test_report_path_follows_settings(tmp_path):
    from encoder import get_settings

    settings = get_settings().model_copy(update={"reports_dir": tmp_path})
    assert services.report_path(settings) == tmp_path / "eval.json"


def test_explain_query_decodes_llm2vec_gen_and_skips_sentence_encoders(smol_encoder):
    from encoder import get_settings, load_encoder

    view = services.explain_query(smol_encoder, "How do I reverse a list?", max_new_tokens=8)
    assert isinstance(view.decoded, str) and view.decoded and view.lens
    from encoder.adapter import default_adapter_path

    assert services.is_generative(smol_encoder)
    assert services.is_untrained(smol_encoder, get_settings()) == (default_adapter_path(smol_encoder.backbone.name) is None)
    baseline = load_encoder("baseline", device="cpu")
    assert services.explain_query(baseline, "anything") == services.QueryView(None, [])
    assert not services.is_untrained(baseline, get_settings())


def test_the_fused_mode_explains_its_query_with_the_llm2vec_gen_part(smol_encoder):
    from encoder import load_encoder
    from encoder.asymmetric import AsymmetricEncoder

    fused = AsymmetricEncoder(smol_encoder, load_encoder("teacher", device="cpu"))
    assert services.is_generative(fused)
    assert services.explain_query(fused, "How do I reverse a list?", max_new_tokens=8) == services.explain_query(
        smol_encoder, "How do I reverse a list?", max_new_tokens=8
    )


def test_the_app_reopens_a_collection_indexed_with_an_adapter_folder(tmp_path, monkeypatch):
    """Issue row: a collection indexed with `--encoder path/to/adapter` could not be reopened by the app."""
    import shutil

    from safetensors.torch import load_file, save_file

    from app import resources
    from encoder import get_settings, load_encoder
    from encoder.adapter import default_adapter_path
    from indexer.corpus import load_folder
    from indexer.pipeline import index_corpus
    from indexer.store import connect

    mine = tmp_path / "my-adapter"
    shutil.copytree(default_adapter_path("smollm2-135m-instruct", get_settings().adapters_path), mine)
    tensors = load_file(mine / "adapter.safetensors")
    name = next(k for k in tensors if k.startswith("align"))
    tensors[name] = tensors[name] * 1.01  # another adapter than the installed one
    save_file(tensors, mine / "adapter.safetensors")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "cats.md").write_text("# Cats\n\nCats purr and chase mice.\n")
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "qdrant"))
    get_settings.cache_clear()
    try:
        settings = get_settings()
        with connect(settings) as client:
            index_corpus(client, load_encoder(str(mine), device="cpu"), load_folder(tmp_path / "docs"), "mine", settings=settings, show_progress=False)
        opened = resources.open_collection("mine")
        assert opened.identity.adapter_path == str(mine.resolve())
        assert opened.search("what do cats do?", 1).hits[0].title == "Cats"
    finally:
        resources._client.clear()
        resources.encoder.clear()
        get_settings.cache_clear()
