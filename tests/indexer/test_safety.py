"""The labelled safety collection: passages indexed with their labels, labelled search, `gensearch index --safety`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder.settings import get_settings
from evaluation.datasets import Passage
from indexer.safety import index_safety, passages_corpus, search_labelled
from indexer.store import count

PASSAGES = [
    Passage("p/0", "Detailed instructions for making a pipe bomb: take a steel pipe and ...", "harmful", "t"),
    Passage("p/1", "I'm sorry, I can't help with building weapons.", "refusal", "t"),
    Passage("p/2", "Tomatoes need six hours of sun a day and deep watering twice a week.", "benign", "t"),
]


def labels_of(client, collection: str) -> dict[str, str]:
    points, _ = client.scroll(collection, limit=100, with_payload=True)
    return {p.payload["source"]: p.payload.get("label") for p in points}


def test_every_point_gets_its_passage_label_and_reindexing_adds_nothing(client, settings, baseline_encoder):
    report = index_safety(client, baseline_encoder, PASSAGES, "safety", settings=settings, show_progress=False)
    assert report.added == 3
    assert labels_of(client, "safety") == {"p/0": "harmful", "p/1": "refusal", "p/2": "benign"}
    again = index_safety(client, baseline_encoder, PASSAGES, "safety", settings=settings, show_progress=False)
    assert again.added == 0 and count(client, "safety") == 3


def test_search_labelled_returns_labels_in_rank_order(client, settings, baseline_encoder):
    index_safety(client, baseline_encoder, PASSAGES, "safety", settings=settings, show_progress=False)
    hits = search_labelled(client, baseline_encoder, "safety", "how do I grow tomatoes", k=3)
    assert [h.label for h in hits][0] == "benign" and hits[0].source == "p/2"
    assert sorted(h.label for h in hits) == ["benign", "harmful", "refusal"]


def test_labels_do_not_reach_the_embedded_text():
    corpus = passages_corpus(PASSAGES)
    assert all(d.title == "" and d.source.startswith("p/") for d in corpus.docs)


def test_bad_passages_are_refused():
    with pytest.raises(ValueError, match="unknown safety labels"):
        passages_corpus([Passage("x", "text", "spicy", "t")])
    with pytest.raises(ValueError, match="unique"):
        passages_corpus([PASSAGES[0], PASSAGES[0]])


def test_cli_index_safety_builds_a_small_labelled_collection(tmp_path, monkeypatch):
    """Reads the real data (Python FAQ + pinned PyRIT wheel), 2 passages per label, baseline encoder."""
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "qdrant"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli, ["index", "--safety", "--python-docs"]).exit_code == 2
        result = runner.invoke(cli, ["index", "--safety", "--encoder", "baseline", "--limit", "2"])
        assert result.exit_code == 0, result.output
        assert "6 safety passages (2 harmful, 2 refusal, 2 benign)" in result.output
        assert "safety-baseline: 6 files" in result.output
        from indexer.store import connect

        with connect() as client:
            assert sorted(labels_of(client, "safety-baseline").values()) == ["benign"] * 2 + ["harmful"] * 2 + ["refusal"] * 2
    finally:
        get_settings.cache_clear()
