"""Qdrant write rate through gensearch's own writer: points/s for the store side of indexing.

    .venv/bin/python benchmarks/qdrant_upsert.py                         # embedded store in a temp folder
    .venv/bin/python benchmarks/qdrant_upsert.py --url http://localhost:6333 --points 20000   # a server

Points are shaped like the indexer's: a unit dense vector of ``--dim`` (896: the 0.5B backbone), the chunk's
BM25 keyword vector and the full payload, built from real Python-docs chunk texts (repeated to ``--points``).
They go through ``indexer.pipeline.write_batches`` (one writer thread, each batch durable before the next is
counted), the path both the single-process and the Ray indexer use. Vectors are random: the encoder's cost is
not part of this figure (``index_throughput.py`` and ``encode_paths.py`` measure that side). Prints points/s
and, for scale, how long the writes of a 1M-chunk knowledge base take at that rate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient, models

from encoder import get_settings
from encoder.device import cpu_model
from indexer.identity import EncoderIdentity
from indexer.pipeline import payload, point_vectors, write_batches
from indexer.store import count, ensure_collection

SAMPLE_TEXT = Path(__file__).resolve().parents[1] / "README.md"  # fallback text when the Python docs are not installed


def chunk_texts(n: int, words: int = 200) -> list[str]:
    """``n`` chunk-sized texts: the Python docs FAQ (or the README) cut into ``words``-word pieces, repeated."""
    from indexer.corpus import CorpusError, python_docs_dir

    try:
        text = " ".join(p.read_text(errors="replace") for p in sorted((python_docs_dir(get_settings()) / "faq").glob("*.txt")))
    except CorpusError:
        text = SAMPLE_TEXT.read_text()
    tokens = text.split()
    pieces = [" ".join(tokens[i : i + words]) for i in range(0, max(len(tokens) - words, 1), words)]
    return [pieces[i % len(pieces)] + f" #{i}" for i in range(n)]  # distinct texts, realistic keyword vectors


def points(texts: list[str], dim: int, identity: EncoderIdentity, seed: int = 0) -> list[models.PointStruct]:
    """Indexer-shaped points (``pipeline.payload``, ``point_vectors``) with random unit dense vectors."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((len(texts), dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    out = []
    for i, (text, vector) in enumerate(zip(texts, dense)):
        source = f"bench/{i // 20}.txt"
        node = TextNode(text=text, metadata={"source": source, "corpus": "bench", "title": "bench", "section": "", "chunk_index": i % 20, "format": "text"})
        fields = {"readers": ["*"], "path": source, "folders": ["bench"], "modified": 0.0}
        out.append(models.PointStruct(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, text)),
            vector=point_vectors(vector, text, sparse=True),
            payload=payload(node, identity, text.split()[:8], fields),
        ))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=5000, help="Points written (default 5000).")
    parser.add_argument("--dim", type=int, default=896, help="Dense dimension (896: Qwen2.5-0.5B; 384: the baseline).")
    parser.add_argument("--batch-size", type=int, default=64, help="Points per upsert (the indexer's default, 64).")
    parser.add_argument("--url", default=None, help="A Qdrant server (default: an embedded store in a temp folder).")
    parser.add_argument("--out", type=Path, default=None, help="Write the result as JSON here.")
    args = parser.parse_args()

    identity = EncoderIdentity("bench", "random", None, args.dim)
    all_points = points(chunk_texts(args.points), args.dim, identity)
    batches = [all_points[i : i + args.batch_size] for i in range(0, len(all_points), args.batch_size)]
    with tempfile.TemporaryDirectory(prefix="gensearch-upsert-") as tmp:
        client = QdrantClient(url=args.url, timeout=60) if args.url else QdrantClient(path=str(Path(tmp) / "qdrant"))
        collection = f"bench-upsert-{uuid.uuid4().hex[:8]}"
        ensure_collection(client, collection, identity, recreate=True)
        started = time.perf_counter()
        written = write_batches(client, collection, iter(batches), len(all_points))
        seconds = time.perf_counter() - started
        assert count(client, collection) == written == len(all_points)
        client.delete_collection(collection)
        client.close()
    rate = written / seconds
    result = {
        "store": args.url or "embedded", "cpu": cpu_model(), "points": written, "dim": args.dim, "batch_size": args.batch_size,
        "seconds": round(seconds, 2), "points_per_s": round(rate, 1), "hours_for_1M_points": round(1e6 / rate / 3600, 2),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
