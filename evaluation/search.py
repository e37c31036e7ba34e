"""Exact cosine top-k over in-memory vectors (numpy): the retrieval step of the evaluation."""

from __future__ import annotations

import numpy as np


def top_k(queries: np.ndarray, documents: np.ndarray, k: int) -> np.ndarray:
    """Indices (Q, min(k, N)) of the k most cosine-similar documents per query, best first; ties -> lower index."""
    if queries.ndim != 2 or documents.ndim != 2 or queries.shape[1] != documents.shape[1]:
        raise ValueError(f"need (Q, D) queries and (N, D) documents, got {queries.shape} and {documents.shape}")
    q = queries / np.clip(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12, None)
    d = documents / np.clip(np.linalg.norm(documents, axis=1, keepdims=True), 1e-12, None)
    scores = q @ d.T  # (Q, N)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]
