"""A collection's query map: ``q -> unit(q + D q)``, the residual linear map `gensearch adapt` learns.

The fused query vector is mostly the teacher's (weight 4-8), so refining LLM2Vec-Gen's align head alone barely moves
it (docs/experiments.md). The map acts on the vector the collection is searched with, so it can also move the
teacher's part of it towards the collection's passages. D starts at zero (the identity map) and is fitted by InfoNCE
on the questions the backbone wrote about the collection's chunks (``training.adapt``). It applies to benign queries'
fused vectors only: a query the refusal gate routes searches with its routed vector, untouched. Stored in the
collection's adapter folder::

    query_map.safetensors   delta (D, D)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .adapter import AdapterError

QUERY_MAP = "query_map.safetensors"


class QueryMap:
    """``unit(q + q @ delta.T)`` row by row, for unit query vectors (N, D)."""

    def __init__(self, delta: np.ndarray):
        self.delta = np.asarray(delta, np.float32)  # (D, D)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        moved = vectors + vectors @ self.delta.T
        return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(vectors.dtype)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / QUERY_MAP
        save_file({"delta": torch.from_numpy(self.delta).contiguous()}, str(path))
        return path


def load_query_map(folder: str | Path, dim: int) -> QueryMap | None:
    """The query map in an adapter folder (None: it has none); AdapterError if it is corrupt or not (dim, dim)."""
    path = Path(folder) / QUERY_MAP
    if not path.is_file():
        return None
    try:
        delta = load_file(str(path)).get("delta")
    except (SafetensorError, OSError) as exc:
        raise AdapterError(f"{path} is corrupt ({exc}); undo the collection's adaptation (`gensearch adapt NAME --undo`) or re-run it") from exc
    if delta is None or tuple(delta.shape) != (dim, dim):
        raise AdapterError(f"{path} does not fit {dim}-d query vectors; re-run `gensearch adapt`")
    return QueryMap(delta.float().numpy())
