"""Store connection errors are actionable; collections record their encoder."""

from __future__ import annotations

import shutil

import pytest
from qdrant_client import models

from indexer.identity import EncoderIdentity, identity_of
from indexer.store import StoreError, collection_identity, connect, count, ensure_collection, open_client


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_locked_embedded_store_is_an_actionable_error(settings, engine):
    settings = settings.model_copy(update={"qdrant_engine": engine})
    with connect(settings):
        with pytest.raises(StoreError, match="in use by another client.*GENSEARCH_QDRANT_PATH.*GENSEARCH_QDRANT_URL"):
            open_client(settings)
    with connect(settings):  # released after close
        pass


def test_unreachable_server_is_an_actionable_error(settings):
    down = settings.model_copy(update={"qdrant_url": "http://127.0.0.1:9"})
    with pytest.raises(StoreError, match="cannot reach the Qdrant server at http://127.0.0.1:9.*docker compose up"):
        open_client(down)


def test_collection_records_and_checks_identity(client, baseline_encoder):
    identity = identity_of(baseline_encoder)
    assert ensure_collection(client, "c", identity) is True
    assert ensure_collection(client, "c", identity) is False
    assert collection_identity(client, "c") == identity
    other = EncoderIdentity("llm2vec-gen", "smollm2-135m-instruct", "0123456789abcdef", 768)
    with pytest.raises(StoreError, match="holds vectors of all-minilm-l6-v2"):
        ensure_collection(client, "c", other)
    assert ensure_collection(client, "c", other, recreate=True) is True
    assert collection_identity(client, "c") == other


def test_foreign_collection_is_refused(client, baseline_encoder):
    client.create_collection("foreign", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    with pytest.raises(StoreError, match="not built by gensearch"):
        ensure_collection(client, "foreign", identity_of(baseline_encoder))


def test_identity_distinguishes_adapters(smol_encoder):
    from encoder import LLM2VecGenEncoder

    identity = identity_of(smol_encoder)
    assert identity.adapter and identity.dim == 768 and identity_of(smol_encoder) == identity
    other = LLM2VecGenEncoder.fresh(smol_encoder.backbone, seed=1)  # same backbone, another adapter
    assert identity_of(other).adapter != identity.adapter


def damaged_store(settings, engine: str, damage) -> object:
    """A store of one collection ``kb`` on ``engine``, then ``damage(file)`` on the file holding its points."""
    settings = settings.model_copy(update={"qdrant_engine": engine})
    with connect(settings) as client:
        client.create_collection("kb", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
        client.upsert("kb", points=[models.PointStruct(id=i, vector=[1.0, 0.0, 0.0, float(i)]) for i in range(50)])
    store = settings.qdrant_path
    damage(store / "collection" / "kb" / "storage.sqlite" if engine == "local" else next((store / "edge" / "kb").rglob("segment.json")))
    return settings


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_a_truncated_store_is_an_actionable_error_not_a_traceback(settings, engine):
    settings = damaged_store(settings, engine, lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]))
    with pytest.raises(StoreError, match="is damaged.*re-index"):
        with connect(settings) as client:  # the local mode refuses to open the store, Edge to open the collection
            count(client, "kb")


def lose_data(store, collection: str, how: str = "empty") -> None:
    """What a disk or an operator can do to a collection's points: empty or delete the file (local) or folder (Edge)."""
    edge = store / "edge" / collection / "shard" / "segments"
    if edge.is_dir():
        shutil.rmtree(edge)
        if how == "empty":
            edge.mkdir()
        return
    data = store / "collection" / collection / "storage.sqlite"
    data.write_bytes(b"") if how == "empty" else data.unlink()


@pytest.mark.parametrize("engine", ["edge", "local"])
@pytest.mark.parametrize("how", ["empty", "missing"])
def test_an_emptied_collection_is_refused_not_searched_as_empty(settings, engine, how):
    settings = damaged_store(settings, engine, lambda f: None)
    lose_data(settings.qdrant_path, "kb", how)
    with pytest.raises(StoreError, match="collection 'kb' .* has lost its data.*--recreate -c kb"):
        open_client(settings)


def test_store_check_reports_each_problem_with_its_fix(tmp_path, docs_dir, settings, baseline_encoder, monkeypatch):
    """`gensearch store check`: a healthy collection is ok; unlabelled chunks, an interrupted run's hidden chunks
    and a vanished folder are warnings that say what to run; a damaged store is an error (exit 1)."""
    from typer.testing import CliRunner

    from app.cli import cli
    from encoder import get_settings
    from indexer.corpus import load_folder
    from indexer.pipeline import hide_points, index_corpus, stored_document_fields
    from indexer.store import connect

    with connect(settings) as client:
        corpus = load_folder(docs_dir)
        index_corpus(client, baseline_encoder, corpus, "docs", settings=settings, show_progress=False)
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(settings.qdrant_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        healthy = runner.invoke(cli, ["store", "check"])
        assert healthy.exit_code == 0 and "ok      docs:" in healthy.output, healthy.output
        with connect(settings) as client:
            stored = stored_document_fields(client, "docs", corpus.root)
            first, second = sorted(stored)[:2]
            hide_points(client, "docs", stored, [first])  # as a killed run leaves a stale chunk
            client.delete_payload("docs", keys=["readers"], points=[second])  # as an index made before permissions
        found = runner.invoke(cli, ["store", "check", "-c", "docs"])
        assert found.exit_code == 0, found.output
        assert "1 stale chunks are hidden" in found.output and "1 of" in found.output and "count as public" in found.output
        lose_data(settings.qdrant_path, "docs")
        damaged = runner.invoke(cli, ["store", "check"])
        assert damaged.exit_code == 1 and "has lost its data" in damaged.output
    finally:
        get_settings.cache_clear()


def test_a_snapshot_restored_into_an_empty_store_answers_the_same_searches(tmp_path, docs_dir, settings, baseline_encoder, monkeypatch):
    """Issue 34: `gensearch store snapshot` then `restore` into an empty store: same points, same answers."""
    from typer.testing import CliRunner

    from app.cli import cli
    from encoder import get_settings
    from indexer.corpus import load_folder
    from indexer.pipeline import index_corpus
    from indexer.search import search
    from indexer.store import connect

    queries = ["what do cats eat", "reverse a list", "steam locomotive"]
    with connect(settings) as client:
        index_corpus(client, baseline_encoder, load_folder(docs_dir), "docs", settings=settings, show_progress=False)
        before = [[(h.id, round(h.score, 5)) for h in search(client, baseline_encoder, "docs", q, 5, mode=m).hits] for q in queries for m in ("dense", "hybrid")]
        points = client.count("docs", exact=True).count
    runner = CliRunner()
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(settings.qdrant_path))
    get_settings.cache_clear()
    try:
        made = runner.invoke(cli, ["store", "snapshot", "-c", "docs", str(tmp_path / "docs.tar")])
        assert made.exit_code == 0 and f"{points} points" in made.output, made.output
        monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "empty-store"))
        get_settings.cache_clear()
        restored = runner.invoke(cli, ["store", "restore", str(tmp_path / "docs.tar")])
        assert restored.exit_code == 0 and f"restored {points} points into docs" in restored.output, restored.output
        again = runner.invoke(cli, ["store", "restore", str(tmp_path / "docs.tar")])
        assert again.exit_code == 1 and "already exists" in again.output
        damaged = tmp_path / "damaged.tar"
        data = bytearray((tmp_path / "docs.tar").read_bytes())
        start = data.index(b"\x1f\x8b")  # the points' gzip stream
        data[start + 20 : start + 60] = bytes(40)  # damaged inside it
        damaged.write_bytes(bytes(data))
        kept = runner.invoke(cli, ["store", "restore", str(damaged), "--force"])
        assert kept.exit_code == 1 and "is damaged" in kept.output and "nothing was restored" in kept.output, kept.output
        (tmp_path / "junk.tar").write_bytes(b"not a tar")
        junk = runner.invoke(cli, ["store", "restore", str(tmp_path / "junk.tar"), "-c", "other"])
        assert junk.exit_code == 1 and "is not a gensearch snapshot" in junk.output
    finally:
        get_settings.cache_clear()
    with connect(settings.model_copy(update={"qdrant_path": tmp_path / "empty-store"})) as client:
        assert client.count("docs", exact=True).count == points  # the damaged file replaced nothing
        after = [[(h.id, round(h.score, 5)) for h in search(client, baseline_encoder, "docs", q, 5, mode=m).hits] for q in queries for m in ("dense", "hybrid")]
        assert after == before
