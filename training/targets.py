"""Teacher targets: the teacher encodes every response once; vectors are cached on disk by content hash.

The text embedded is the response without its trailing EOS string (``row["eos"]``). Store layout,
one folder per teacher (default ``<run_dir>/targets/<teacher name>/``)::

    meta.json        {"teacher", "dim", "normalized"}
    index.jsonl      {"key", "shard", "row"} per vector; key = SHA-256 of the text (hex, 32 chars)
    NNNNN.npy        float32 (n, dim) shards, one per save (every ``save_every`` new texts)

Re-running encodes only texts whose key is not in the index; a killed run keeps every saved shard.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from encoder.base import Encoder
from encoder.generation import strip_eos

log = logging.getLogger(__name__)


def response_text(row: dict[str, Any]) -> str:
    """A response row's text without the trailing EOS marker."""
    return strip_eos(row["response"], row.get("eos"))


def text_key(text: str) -> str:
    """Content hash that keys a target vector."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class TargetStore:
    """Append-only store of teacher vectors keyed by content hash (``.npy`` shards + a JSONL index)."""

    def __init__(self, folder: Path, teacher: str, dim: int, normalized: bool = True):
        self.folder = Path(folder)
        self.meta = {"teacher": teacher, "dim": dim, "normalized": normalized}
        meta_path = self.folder / "meta.json"
        if meta_path.is_file():
            existing = json.loads(meta_path.read_text())
            if existing != self.meta:
                raise ValueError(f"{self.folder} holds targets for {existing}, not {self.meta}; use another folder")
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta_path.write_text(json.dumps(self.meta))
        self.index: dict[str, tuple[str, int]] = {}
        index_path = self.folder / "index.jsonl"
        if index_path.is_file():
            for line in index_path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    if (self.folder / entry["shard"]).is_file():
                        self.index[entry["key"]] = (entry["shard"], entry["row"])
        self._shards: dict[str, np.ndarray] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def __len__(self) -> int:
        return len(self.index)

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Save one new shard and index it (shard written atomically before the index lines)."""
        if len(keys) != len(vectors) or vectors.shape[1:] != (self.meta["dim"],):
            raise ValueError(f"expected {len(keys)} vectors of dim {self.meta['dim']}, got {vectors.shape}")
        number = 1 + max((int(p.stem) for p in self.folder.glob("[0-9]*.npy")), default=0)
        shard = f"{number:05d}.npy"
        tmp = self.folder / f".{shard}.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, vectors.astype(np.float32))
        os.replace(tmp, self.folder / shard)
        with open(self.folder / "index.jsonl", "a") as fh:
            for row, key in enumerate(keys):
                fh.write(json.dumps({"key": key, "shard": shard, "row": row}) + "\n")
                self.index[key] = (shard, row)

    def get(self, keys: Iterable[str]) -> np.ndarray:
        """Vectors for ``keys`` in order, shape (n, dim); KeyError if any is missing."""
        keys = list(keys)
        missing = [k for k in keys if k not in self.index]
        if missing:
            raise KeyError(f"{len(missing)} of {len(keys)} texts have no cached target; run `gensearch train targets`")
        out = np.empty((len(keys), self.meta["dim"]), dtype=np.float32)
        for i, key in enumerate(keys):
            shard, row = self.index[key]
            if shard not in self._shards:
                self._shards[shard] = np.load(self.folder / shard, mmap_mode="r")
            out[i] = self._shards[shard][row]
        return out


def open_store(folder: Path, teacher: Encoder) -> TargetStore:
    """The target store of ``teacher`` under ``folder/<teacher name>``."""
    return TargetStore(Path(folder) / teacher.name, teacher.name, teacher.dim)


def build_targets(
    rows: list[dict[str, Any]],
    store: TargetStore,
    teacher: Encoder,
    *,
    batch_size: int = 32,
    save_every: int = 1024,
    progress: bool = True,
) -> dict[str, Any]:
    """Encode the responses of ``rows`` whose text is not cached yet; returns counts and timing."""
    started = time.perf_counter()
    texts: dict[str, str] = {}
    for row in rows:
        text = response_text(row)
        texts.setdefault(text_key(text), text)
    todo = [k for k in texts if k not in store]
    log.info("%d responses, %d unique texts, %d cached, %d to encode", len(rows), len(texts), len(texts) - len(todo), len(todo))
    with tqdm(total=len(todo), unit="text", desc="teacher", disable=not progress) as bar:
        for start in range(0, len(todo), save_every):
            keys = todo[start : start + save_every]
            vectors = teacher.encode([texts[k] for k in keys], task="document", batch_size=batch_size, show_progress_bar=False)
            store.add(keys, vectors)
            bar.update(len(keys))
    return {
        "responses": len(rows),
        "unique": len(texts),
        "cached": len(texts) - len(todo),
        "encoded": len(todo),
        "seconds": round(time.perf_counter() - started, 1),
    }


def load_targets(rows: list[dict[str, Any]], store: TargetStore) -> np.ndarray:
    """Teacher vectors aligned with ``rows`` (n, dim)."""
    return store.get(text_key(response_text(row)) for row in rows)
