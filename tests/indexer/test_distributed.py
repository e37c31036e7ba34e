"""Distributed indexing on Ray (indexer.distributed): a local Ray and a two-node cluster give the points of the
single-process indexer, and a `kill -9` of a `gensearch index --workers 2` run, re-run, ends with exactly the
corpus's chunks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import cli
from indexer.chunking import chunk_documents
from indexer.corpus import load_folder
from indexer.distributed import DistributedError, WorkerPlan, check_reachable, import_ray, index_corpus_distributed, plan_workers, worker_settings
from indexer.embedding import tokenizer_of
from indexer.pipeline import index_corpus
from indexer.store import connect, count, point_ids

from .conftest import write_docs

ray = pytest.importorskip("ray", reason="Ray is part of `make install` (the ray extra)")

SENTENCES = [
    "The kettle whistles when the water boils and the tea leaves need three minutes to steep.",
    "Glaciers carve valleys slowly, pushing rocks and gravel ahead of them for thousands of years.",
    "A binary search halves the interval on every step, so it needs logarithmic time on sorted data.",
    "Bees dance to tell the hive where flowers are, the angle pointing relative to the sun.",
    "Compilers turn source code into machine instructions after parsing, checking and optimising it.",
    "Sourdough rises because wild yeast and bacteria ferment the flour and release carbon dioxide.",
    "The violin's sound comes from the bow's friction making the strings vibrate over the body.",
    "Tides follow the Moon: its gravity pulls the oceans into two bulges that the Earth turns under.",
]


def big_corpus(root: Path, files: int = 16) -> Path:
    """``files`` documents of two sections each: about four small chunks per file."""
    docs = {}
    for i in range(files):
        parts = [f"## Part {j}\n\n" + " ".join(f"(Note {i}.{j}.{k}) {SENTENCES[(i + j + k) % len(SENTENCES)]}" for k in range(3)) for j in range(2)]
        docs[f"topic{i:02d}.md"] = f"# Topic {i}\n\n" + "\n\n".join(parts) + "\n"
    return write_docs(root, docs)


@pytest.fixture()
def cpu_settings(settings):
    """The indexer fixture's settings (tmp store, 48-token chunks), fp32 on the CPU like ``smol_encoder``."""
    return settings.model_copy(update={"device": "cpu", "dtype": "float32"})


def all_points(client, collection):
    points, _ = client.scroll(collection, limit=10_000, with_payload=True, with_vectors=True)
    return {str(p.id): p for p in points}


def cosine(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_workers_2_give_the_single_process_points(client, docs_dir, cpu_settings, smol_encoder):
    single = index_corpus(client, smol_encoder, load_folder(docs_dir), "single", settings=cpu_settings, show_progress=False)
    done = []
    report = index_corpus_distributed(
        client, "test", load_folder(docs_dir), "ray", workers=2, settings=cpu_settings, planner=smol_encoder, batch_size=2,
        show_progress=False, on_batch=lambda n, total: done.append((n, total)),
    )
    assert report.added == report.chunks == single.chunks > 4 and report.timings["workers"] == 2
    assert done[-1] == (report.added, report.added) and len(done) == -(-report.added // 2)  # every batch durable, counted
    a, b = all_points(client, "single"), all_points(client, "ray")
    assert a.keys() == b.keys()
    for point_id, p in a.items():
        assert cosine(p.vector[""], b[point_id].vector[""]) >= 0.9999
        assert p.vector["bm25"] == b[point_id].vector["bm25"]
        assert p.payload == b[point_id].payload  # text, source, keywords (lens words), readers, ...
    again = index_corpus_distributed(client, "test", load_folder(docs_dir), "ray", workers=2, settings=cpu_settings, planner=smol_encoder)
    assert (again.added, again.removed, again.unchanged) == (0, 0, report.chunks) and "workers" not in again.timings  # Ray not started
    assert not ray.is_initialized()  # the local Ray it started is shut down


def stored_points(store: Path, collection: str) -> int:
    """Points in the embedded store's SQLite file, read-only: the writer holds the store's lock, so no second client."""
    db = store / "collection" / collection / "storage.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.Error:  # created but no table yet, or busy
        return 0


def ray_processes(marker: str) -> list[int]:
    """Pids of processes whose command line mentions ``marker`` (the killed run's own Ray temp dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def index_env(store: Path) -> dict[str, str]:
    """The environment of a `gensearch index` subprocess: the fixtures' store, chunking and fp32 CPU."""
    return {
        **os.environ, "GENSEARCH_QDRANT_PATH": str(store), "GENSEARCH_CHUNK_SIZE": "48", "GENSEARCH_CHUNK_OVERLAP": "8",
        "GENSEARCH_DEVICE": "cpu", "GENSEARCH_DTYPE": "float32",
    }


def index_command(docs: Path, *ray_options: str) -> list[str]:
    """`gensearch index DOCS` with the test backbone into collection docs, batches of 2, on Ray as ``ray_options`` say."""
    return [str(Path(sys.executable).parent / "gensearch"), "index", str(docs), "--encoder", "test", "-c", "docs", *ray_options, "--batch-size", "2"]


@pytest.fixture()
def ray_tmp():
    """A short RAY_TMPDIR of its own (Ray's socket paths live under it), removed after the test."""
    path = tempfile.mkdtemp(prefix="gsray", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_kill_9_of_a_ray_run_then_rerun_gives_exactly_the_corpus(tmp_path, cpu_settings, smol_encoder, ray_tmp):
    # On the local mode: its SQLite file can be read while the killed run holds the store, so the kill lands after
    # the first durable batches (an Edge store admits no reader meanwhile). Kills of Edge runs: test_corpora, test_engines.
    cpu_settings = cpu_settings.model_copy(update={"qdrant_engine": "local"})
    docs = big_corpus(tmp_path / "big")
    store = cpu_settings.qdrant_path
    wanted = {c.id_ for c in chunk_documents(load_folder(docs).docs, str(docs.resolve()), tokenizer_of(smol_encoder), 48, 8)}
    env = {**index_env(store), "RAY_TMPDIR": ray_tmp, "GENSEARCH_QDRANT_ENGINE": "local"}
    cmd = index_command(docs, "--workers", "2")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while (written := stored_points(store, "docs")) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its local Ray (GCS, raylet) and the workers
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    time.sleep(2)
    assert ray_processes(ray_tmp) == []  # nothing of the killed run's Ray survives it

    with connect(cpu_settings) as client:  # the killed writer's lock is gone
        partial = point_ids(client, "docs")
    assert 2 <= written <= len(partial) < len(wanted) and partial <= wanted  # killed mid-run: some batches durable

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"added {len(wanted) - len(partial)} " in rerun.stdout and f"unchanged {len(partial)} " in rerun.stdout, rerun.stdout
    with connect(cpu_settings) as client:
        assert count(client, "docs") == len(wanted)  # no duplicate
        assert point_ids(client, "docs") == wanted  # no loss, nothing else
        assert point_ids(client, "docs", str(docs.resolve())) == wanted


def test_ray_address_of_a_two_node_cluster_embeds_on_both_nodes_and_gives_the_single_process_points(
    tmp_path, client, cpu_settings, smol_encoder, ray_tmp, monkeypatch
):
    from ray.cluster_utils import Cluster

    docs = big_corpus(tmp_path / "big")  # enough batches that both encoders are up before the work runs out
    single = index_corpus(client, smol_encoder, load_folder(docs), "single", settings=cpu_settings, show_progress=False)
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})  # two raylets on this host: a two-node cluster
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        store = tmp_path / "cluster-store"
        cmd = index_command(docs, "--ray-address", cluster.address)  # default: one encoder per node
        run = subprocess.run(cmd, env=index_env(store), capture_output=True, text=True, timeout=400)
    finally:
        cluster.shutdown()
    assert run.returncode == 0, run.stderr[-3000:]
    assert "embedded on 2 Ray workers, 2 node(s)" in run.stdout, run.stdout
    with connect(cpu_settings.model_copy(update={"qdrant_path": store})) as cluster_client:
        ours = all_points(cluster_client, "docs")
    theirs = all_points(client, "single")
    assert ours.keys() == theirs.keys() and len(ours) == single.chunks
    for point_id, p in theirs.items():
        assert cosine(p.vector[""], ours[point_id].vector[""]) >= 0.9999
        assert p.payload["text"] == ours[point_id].payload["text"]


def test_worker_plans():
    assert plan_workers(2, [2.0], 0, cores=8) == WorkerPlan(2, 1.0, 0.0, 4)  # local: one Ray CPU each, cores // N threads
    assert plan_workers(3, [3.0], 0, cores=2).threads == 1
    assert plan_workers(None, [16.0, 16.0], 0) == WorkerPlan(2, 16.0, 0.0, 16)  # CPU cluster: one encoder per node
    assert plan_workers(4, [16.0, 16.0], 0) == WorkerPlan(4, 8.0, 0.0, 8)
    assert plan_workers(None, [8.0, 8.0], 4) == WorkerPlan(4, 1.0, 1.0, 4)  # GPUs: one encoder per GPU
    assert plan_workers(3, [8.0], 2).num_gpus == 0.5  # more encoders than GPUs: they share
    with pytest.raises(DistributedError, match="too few"):
        plan_workers(8, [2.0, 2.0], 0)
    with pytest.raises(DistributedError, match="at least 1"):
        plan_workers(0, [2.0], 0)


def test_workers_get_settings_without_credentials(settings):
    sent = worker_settings(settings.model_copy(update={"qdrant_api_key": "secret", "backbone": "test"}))
    assert "qdrant_api_key" not in sent and "serve_api_keys" not in sent and sent["backbone"] == "test"
    assert type(settings)(**sent).chunk_size == settings.chunk_size


def test_clear_errors(monkeypatch, docs_dir, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DistributedError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - started < 10  # not ray.init's minutes of retries
    with pytest.raises(DistributedError, match="not host:port"):
        check_reachable("nowhere")

    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "qdrant"))
    from encoder.settings import get_settings

    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["index", str(docs_dir), "--encoder", "baseline", "--ray-address", f"127.0.0.1:{port}"])
        assert out.exit_code == 1 and "cannot reach the Ray cluster" in out.output
        out = CliRunner().invoke(cli, ["index", "--safety", "--workers", "2"])
        assert out.exit_code == 2 and "--workers" in out.output
        monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
        with pytest.raises(DistributedError, match=r"gensearch\[ray\]"):
            import_ray()
        out = CliRunner().invoke(cli, ["index", str(docs_dir), "--encoder", "baseline", "--workers", "2"])
        assert out.exit_code == 1 and "Ray is not installed" in out.output
    finally:
        get_settings.cache_clear()
