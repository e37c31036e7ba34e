"""Every read path answers the same on each embedded engine (Qdrant Edge, qdrant-client's local mode), and a local-mode
store moves to Edge with `gensearch store migrate`, even after a kill -9 in the middle (issue 35)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.corpus import load_folder
from indexer.edge import EdgeClient
from indexer.filters import SearchFilter
from indexer.migrate import PROGRESS, migrate_store
from indexer.permissions import Principal
from indexer.pipeline import index_corpus
from indexer.search import Collection
from indexer.store import connect, is_local_store, point_ids
from tests.permissions_kb import USERS, write_kb

ENGINES = ("edge", "local")
QUERIES = ["how many days of holiday", "salary review", "deploy and roll back", "signing keys", "welcome wiki"]
CALLERS = [Principal(u, tuple(g)) for u, g in USERS.items()] + [Principal("root", ("hr", "staff", "eng"))]


@pytest.fixture(scope="module")
def stores(tmp_path_factory, baseline_encoder):
    """The permissions knowledge base indexed once into each engine's store (same encoder, same chunks)."""
    from encoder import get_settings

    root = write_kb(tmp_path_factory.mktemp("kb"))
    out = {}
    for engine in ENGINES:
        settings = get_settings().model_copy(update={"qdrant_path": tmp_path_factory.mktemp(engine) / "qdrant", "qdrant_engine": engine,
                                                     "chunk_size": 48, "chunk_overlap": 8})
        with connect(settings) as client:
            index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
        out[engine] = settings
    return out


def answers(settings, encoder, filters: SearchFilter, mode: str, per_document: bool) -> list[list[tuple[str, float]]]:
    with connect(settings) as client:
        kb = Collection.open(client, "kb", encoder)
        return [[(h.id, round(h.score, 3)) for h in kb.search(q, 5, filters, mode, "off", per_document).hits] for q in QUERIES]


def test_the_embedded_default_is_edge_and_a_local_mode_store_stays_local(stores):
    with connect(stores["edge"].model_copy(update={"qdrant_engine": "auto"})) as client:
        assert isinstance(client, EdgeClient)
    with connect(stores["local"].model_copy(update={"qdrant_engine": "auto"})) as client:
        assert not isinstance(client, EdgeClient) and is_local_store(stores["local"].qdrant_path)


def test_forcing_the_local_mode_onto_an_edge_store_is_refused_not_an_empty_store(stores):
    from indexer.store import StoreError

    with pytest.raises(StoreError, match="holds Qdrant Edge collections.*would hide them"):
        connect(stores["edge"].model_copy(update={"qdrant_engine": "local"})).__enter__()


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
@pytest.mark.parametrize("per_document", [False, True], ids=["chunks", "documents"])
def test_every_read_path_answers_the_same_on_each_engine(stores, baseline_encoder, mode, per_document):
    """Dense, keyword and hybrid search, per chunk and grouped by document, for every caller (the permission filter)."""
    for caller in CALLERS:
        got = {engine: answers(stores[engine], baseline_encoder, SearchFilter(principal=caller), mode, per_document) for engine in ENGINES}
        assert got["edge"] == got["local"], caller
        if caller.user == "dave":
            assert got["edge"] == [[]] * len(QUERIES)  # no groups, default deny: nothing at all


def test_metadata_filters_answer_the_same_on_each_engine(stores, baseline_encoder):
    root = Principal("root", ("hr", "staff", "eng"))
    for filters in (SearchFilter(principal=root, folder="eng"), SearchFilter(principal=root, formats=("text",)),
                    SearchFilter(principal=root, modified_after=0.0), SearchFilter(principal=root, modified_before=1.0)):
        got = {engine: answers(stores[engine], baseline_encoder, filters, "hybrid", False) for engine in ENGINES}
        assert got["edge"] == got["local"], filters
    assert all(not hits for hits in answers(stores["edge"], baseline_encoder, SearchFilter(principal=root, modified_before=1.0), "dense", False))


def copy_local_store(settings, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "store"
    shutil.copytree(settings.qdrant_path, target)
    return target


def test_migrate_moves_a_local_store_to_edge_with_the_same_points_and_answers(stores, baseline_encoder, tmp_path):
    store = copy_local_store(stores["local"], tmp_path)
    moved = migrate_store(store, batch_size=7, show_progress=False)
    assert [m.collection for m in moved] == ["kb"] and not is_local_store(store) and (store / "local-mode-backup" / "meta.json").is_file()
    migrated = stores["local"].model_copy(update={"qdrant_path": store, "qdrant_engine": "auto"})
    with connect(stores["local"]) as local, connect(migrated) as edge:
        assert isinstance(edge, EdgeClient) and point_ids(edge, "kb") == point_ids(local, "kb")
        assert edge.get_collection("kb").config.metadata == local.get_collection("kb").config.metadata  # encoder, folder records
    for caller in CALLERS:
        assert answers(migrated, baseline_encoder, SearchFilter(principal=caller), "hybrid", True) == \
            answers(stores["local"], baseline_encoder, SearchFilter(principal=caller), "hybrid", True)
    assert migrate_store(store, show_progress=False) == []  # nothing left to do


def big_local_store(path: Path, n: int = 3000) -> Path:
    """A local-mode store of one collection with ``n`` random points (dense, keyword vectors, payloads)."""
    import numpy as np
    from qdrant_client import QdrantClient, models

    rng = np.random.default_rng(0)
    client = QdrantClient(path=str(path))
    client.create_collection("big", vectors_config=models.VectorParams(size=16, distance=models.Distance.COSINE),
                             sparse_vectors_config={"bm25": models.SparseVectorParams()}, metadata={"format": "test"})
    for start in range(0, n, 500):
        client.upsert("big", points=[models.PointStruct(
            id=i, vector={"": rng.normal(size=16).tolist(), "bm25": models.SparseVector(indices=[i % 97], values=[1.0])},
            payload={"source": f"doc{i // 10}", "readers": ["*"]}) for i in range(start, min(n, start + 500))])
    client.close()
    return path


MIGRATE = [sys.executable, "-c", "from app.cli import main; main()", "store", "migrate"]


def test_migrate_killed_mid_copy_goes_on_when_re_run(tmp_path):
    """kill -9 while pages are copied (one point per page), then the re-run goes on from the saved offset and ends
    with the same ids as the local store, once each; until it has, the store still opens as the local mode."""
    from qdrant_client import QdrantClient

    store = big_local_store(tmp_path / "store")
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(store)}
    env.pop("GENSEARCH_QDRANT_URL", None)
    env.pop("GENSEARCH_QDRANT_ENGINE", None)
    run = subprocess.Popen([*MIGRATE, "--batch-size", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = store / "edge" / "big" / PROGRESS
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if progress.is_file() and '"offset": null' not in progress.read_text():  # some pages copied, more to go
            break
        time.sleep(0.02)
    assert run.poll() is None, "the migration ended before it could be killed: make the store bigger"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert is_local_store(store)  # nothing retired: the store still opens as the local mode
    again = subprocess.run(MIGRATE, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "migrated big: 3000 points, ids verified" in again.stdout, again.stdout + again.stderr
    local = QdrantClient(path=str(store / "local-mode-backup"))
    edge = EdgeClient(store)
    try:
        assert point_ids(edge, "big") == point_ids(local, "big") and edge.count("big").count == 3000
        assert not progress.exists()
    finally:
        edge.close()
        local.close()


HOLD = """
import sys, time
from encoder import get_settings
from indexer.store import open_client
client = open_client(get_settings())  # as the app does, for its whole life
print("holding", flush=True)
sys.stdin.readline()
client.close()
"""


def test_while_another_process_holds_the_store_index_stops_before_writing_and_says_what_to_do(tmp_path, docs_dir, monkeypatch):
    """The single-writer rule on the embedded default (Edge): the app holds the store while it runs, so `gensearch
    index` (or `watch`) against it stops at once with the way out, and writes nothing; once released it runs."""
    from typer.testing import CliRunner

    from app.cli import cli
    from encoder import get_settings

    store = tmp_path / "qdrant"
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(store)}
    env.pop("GENSEARCH_QDRANT_URL", None)
    env.pop("GENSEARCH_QDRANT_ENGINE", None)
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(store))
    monkeypatch.delenv("GENSEARCH_QDRANT_ENGINE", raising=False)
    get_settings.cache_clear()
    holder = subprocess.Popen([sys.executable, "-c", HOLD], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        refused = CliRunner().invoke(cli, ["index", str(docs_dir), "--encoder", "baseline", "-c", "kb"])
        assert refused.exit_code != 0 and "in use by another client" in refused.output and "GENSEARCH_QDRANT_URL" in refused.output
        assert not (store / "edge" / "kb").exists()  # nothing written
    finally:
        holder.communicate("\n", timeout=60)
    try:
        done = CliRunner().invoke(cli, ["index", str(docs_dir), "--encoder", "baseline", "-c", "kb"])
        assert done.exit_code == 0 and (store / "edge" / "kb" / "collection.json").is_file(), done.output
    finally:
        get_settings.cache_clear()
