"""`gensearch adapt`'s bookkeeping commands and errors, on a real embedded store (no model is loaded for these)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder.settings import get_settings
from indexer.adaptation import record_adapter
from indexer.identity import EncoderIdentity
from indexer.store import connect, ensure_collection


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "qdrant"))
    get_settings.cache_clear()
    with connect(get_settings()) as client:
        ensure_collection(client, "kb", EncoderIdentity("llm2vec-gen-fused", "all-mpnet-base-v2", None, 4))
        ensure_collection(client, "plain", EncoderIdentity("all-minilm-l6-v2", "all-minilm-l6-v2", None, 4))
    yield tmp_path
    get_settings.cache_clear()


def invoke(*args: str):
    return CliRunner().invoke(cli, ["adapt", *args])


def test_status_of_a_collection_never_adapted(store):
    result = invoke("kb", "--status")
    assert result.exit_code == 0 and "not adapted" in result.output


def test_status_and_undo_of_an_adapted_collection(store):
    (store / "adapter").mkdir()
    report = {"held_out": {"fused_before": {"mrr@10": 0.5}, "fused_after": {"mrr@10": 0.6}, "teacher": {"mrr@10": 0.55}}, "fusion_weight": 4.0}
    with connect(get_settings()) as client:
        record_adapter(client, "kb", store / "adapter", report)
    shown = invoke("kb", "--status")
    assert shown.exit_code == 0 and "0.5 -> 0.6" in shown.output and "adapter" in shown.output
    assert json.loads(invoke("kb", "--status", "--json").output)["report"]["fusion_weight"] == 4.0
    undone = invoke("kb", "--undo")
    assert undone.exit_code == 0 and "installed adapter again" in undone.output
    assert "not adapted" in invoke("kb", "--status").output


def test_a_missing_or_unadaptable_collection_is_a_clear_error(store):
    missing = invoke("nope")
    assert missing.exit_code == 1 and "does not exist" in missing.output
    plain = invoke("plain")
    assert plain.exit_code == 1 and "only collections of the fused mode" in plain.output
