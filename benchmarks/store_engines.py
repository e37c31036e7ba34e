"""The embedded engines side by side: Qdrant Edge and qdrant-client's local mode, same vectors, same permission filter.

    .venv/bin/python benchmarks/store_engines.py                       # 100k and 1M points (local mode stops at 100k)
    .venv/bin/python benchmarks/store_engines.py --sizes 20000 --queries 50   # a quick look

Each engine x size is built through the product's store layer (``open_client`` with ``GENSEARCH_QDRANT_ENGINE``,
``ensure_collection``: dense + keyword vectors, payload indexes) in one subprocess and searched in another, so the
search side's memory is what a reopened store costs. Points: unit 768-d vectors around 1,000 seeded cluster centres
(what document embeddings look like, and harder for an ANN index than uniform noise), each readable by one of 20
groups or by everyone (10 %). Queries: 100 vectors near random centres, searched as a user of 2 groups with the
product's permission filter (``SearchFilter.to_qdrant``: about 19 % of the points readable), top 10.

Per record: insert_s (upserts, 1,024 points each), build_s (Edge's HNSW and segment merge, ``finish_writes``),
reopen_s (open the store + the first query), p50/p95 query latency (ms, after 5 warm-up queries), recall@10 against
exact filtered search (numpy, computed while the points were generated), rss_gb of the search process, disk_gb.
Writes reports/store_engines.json (records are replaced per engine x size, others kept) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM, CENTRES, GROUPS, BATCH, K, WARMUP = 768, 1000, 20, 1024, 10, 5
USER_GROUPS = ("g0", "g1")
COLLECTION = "bench"
REPORT = Path(__file__).resolve().parents[1] / "reports" / "store_engines.json"


def centres(seed: int = 0) -> np.ndarray:
    c = np.random.default_rng(seed).normal(size=(CENTRES, DIM)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def batch(b: int, n: int, c: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Points [b * BATCH, ...) of a store of n: vectors and each point's reader token (seeded per batch)."""
    rng = np.random.default_rng([1, b])
    size = min(BATCH, n - b * BATCH)
    vectors = unit(c[rng.integers(0, CENTRES, size)] + 0.04 * rng.normal(size=(size, DIM)).astype(np.float32))
    groups = rng.integers(0, GROUPS, size)
    readers = ["*" if rng.random() < 0.1 else f"group:g{g}" for g in groups]
    return vectors, readers


def queries(n: int, c: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(2)
    return unit(c[rng.integers(0, CENTRES, n)] + 0.04 * rng.normal(size=(n, DIM)).astype(np.float32))


def settings_for(store: Path, engine: str):
    from encoder import get_settings

    return get_settings().model_copy(update={"qdrant_path": store, "qdrant_engine": engine, "qdrant_url": None})


def user_filter():
    from indexer.filters import SearchFilter
    from indexer.permissions import Principal

    return SearchFilter(principal=Principal("bench", USER_GROUPS)).to_qdrant()


def build(store: Path, engine: str, n: int, n_queries: int, truth_path: Path) -> dict:
    """Insert n points through the store layer, build the index; exact filtered top-K saved for recall."""
    from qdrant_client import models
    from tqdm.auto import tqdm

    from indexer.identity import EncoderIdentity
    from indexer.store import connect, ensure_collection, finish_writes

    c, q = centres(), queries(n_queries, centres())
    allowed = {"*", *(f"group:{g}" for g in USER_GROUPS)}
    best_s = np.full((n_queries, K), -np.inf, np.float32)
    best_i = np.full((n_queries, K), -1, np.int64)
    insert_s = 0.0
    with connect(settings_for(store, engine)) as client:
        ensure_collection(client, COLLECTION, EncoderIdentity("bench", "random-clustered", None, DIM))
        for b in tqdm(range((n + BATCH - 1) // BATCH), desc=f"{engine} insert {n:,}", unit="batch", mininterval=5):
            vectors, readers = batch(b, n, c)
            ids = np.arange(b * BATCH, b * BATCH + len(vectors))
            points = [models.PointStruct(id=int(i), vector={"": v.tolist()}, payload={"readers": [r], "source": f"doc{i // 10}"})
                      for i, v, r in zip(ids, vectors, readers)]
            t0 = time.perf_counter()
            client.upsert(COLLECTION, points=points, wait=True)
            insert_s += time.perf_counter() - t0
            mask = np.array([r in allowed for r in readers])
            if mask.any():  # exact filtered search, merged batch by batch
                scores = q @ vectors[mask].T
                all_s = np.concatenate([best_s, scores], axis=1)
                all_i = np.concatenate([best_i, np.broadcast_to(ids[mask], scores.shape)], axis=1)
                top = np.argpartition(-all_s, K, axis=1)[:, :K]
                best_s, best_i = np.take_along_axis(all_s, top, 1), np.take_along_axis(all_i, top, 1)
        t0 = time.perf_counter()
        finish_writes(client, COLLECTION)
        build_s = time.perf_counter() - t0
    np.savez(truth_path, queries=q, ids=best_i)
    return {"insert_s": round(insert_s, 1), "build_s": round(build_s, 1)}


def serve(store: Path, engine: str, truth_path: Path) -> dict:
    """Reopen the store, run the queries with the permission filter: latency, recall@10, memory."""
    from indexer.store import connect

    truth = np.load(truth_path)
    flt = user_filter()
    t0 = time.perf_counter()
    with connect(settings_for(store, engine)) as client:
        first = client.query_points(COLLECTION, query=truth["queries"][0].tolist(), query_filter=flt, limit=K)
        reopen_s = time.perf_counter() - t0
        assert first.points, "the reopened store answered nothing"
        for v in truth["queries"][:WARMUP]:
            client.query_points(COLLECTION, query=v.tolist(), query_filter=flt, limit=K)
        times, recalls = [], []
        for v, expected in zip(truth["queries"], truth["ids"]):
            t0 = time.perf_counter()
            hits = client.query_points(COLLECTION, query=v.tolist(), query_filter=flt, limit=K).points
            times.append((time.perf_counter() - t0) * 1000)
            recalls.append(len({int(h.id) for h in hits} & set(expected.tolist())) / K)
    return {"reopen_s": round(reopen_s, 2), "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2), "recall_at_10": round(float(np.mean(recalls)), 4),
            "rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}


def disk_gb(path: Path) -> float:
    return round(sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**30, 2)


def run_one(engine: str, n: int, n_queries: int, workdir: Path) -> dict:
    from encoder.device import cpu_model

    store, truth = workdir / f"{engine}-{n}", workdir / f"{engine}-{n}-truth.npz"
    shutil.rmtree(store, ignore_errors=True)
    record = {"engine": engine, "points": n, "dim": DIM, "filter": f"readers of a user in {len(USER_GROUPS)} of {GROUPS} groups (~19 %)",
              "queries": n_queries}
    for phase in ("build", "serve"):
        out = workdir / f"{phase}.json"
        cmd = [sys.executable, __file__, "--phase", phase, "--engine", engine, "--store", str(store), "--truth", str(truth),
               "--sizes", str(n), "--queries", str(n_queries), "--phase-out", str(out)]
        subprocess.run(cmd, check=True)
        record.update(json.loads(out.read_text()))
    record.update(disk_gb=disk_gb(store), cpu=cpu_model(), cores=os.cpu_count())
    shutil.rmtree(store, ignore_errors=True)
    return record


def save(records: list[dict]) -> None:
    old = json.loads(REPORT.read_text()) if REPORT.is_file() else {"records": []}
    keys = {(r["engine"], r["points"]) for r in records}
    kept = [r for r in old["records"] if (r["engine"], r["points"]) not in keys]
    merged = sorted(kept + records, key=lambda r: (r["points"], r["engine"]))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"benchmark": "benchmarks/store_engines.py", "records": merged}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated point counts")
    parser.add_argument("--engines", default="edge,local")
    parser.add_argument("--local-max", type=int, default=100_000,
                        help="largest size the local mode runs (it keeps every vector in Python memory and scans them all per query)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=None, help="where the stores are built (default: a temp folder)")
    parser.add_argument("--phase", choices=["build", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--truth", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.phase == "build":
        args.phase_out.write_text(json.dumps(build(args.store, args.engine, sizes[0], args.queries, args.truth)))
        return
    if args.phase == "serve":
        args.phase_out.write_text(json.dumps(serve(args.store, args.engine, args.truth)))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="store-engines-"))
    workdir.mkdir(parents=True, exist_ok=True)
    records = []
    for n in sizes:
        for engine in args.engines.split(","):
            if engine == "local" and n > args.local_max:
                records.append({"engine": engine, "points": n, "dim": DIM, "skipped": f"the local mode is not run above {args.local_max:,} points: "
                                "it holds every vector in Python objects and scans them all per query (see the 100k record)"})
                continue
            records.append(run_one(engine, n, args.queries, workdir))
            save(records)
            print(json.dumps(records[-1]), flush=True)
    save(records)
    print(f"{'engine':6} {'points':>9} {'insert_s':>9} {'build_s':>8} {'p50_ms':>7} {'p95_ms':>7} {'recall':>7} {'reopen_s':>8} {'rss_gb':>6} {'disk_gb':>7}")
    for r in records:
        if "skipped" in r:
            print(f"{r['engine']:6} {r['points']:>9,} skipped")
        else:
            print(f"{r['engine']:6} {r['points']:>9,} {r['insert_s']:>9} {r['build_s']:>8} {r['p50_ms']:>7} {r['p95_ms']:>7} "
                  f"{r['recall_at_10']:>7} {r['reopen_s']:>8} {r['rss_gb']:>6} {r['disk_gb']:>7}")


if __name__ == "__main__":
    main()
