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
