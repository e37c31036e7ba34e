"""Any gensearch ``Encoder`` as an ``mteb`` model, for users with hub access (MTEB data is not offline here).

Implements mteb 2.x's ``EncoderProtocol`` (``mteb/models/models_protocols.py``)::

    encode(inputs: DataLoader[BatchedInput], *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs)
    similarity(a, b), similarity_pairwise(a, b), mteb_model_meta

and still accepts the 1.x call ``encode(sentences, task_name=..., prompt_type=...)``. ``prompt_type``
"query" uses LLM2Vec-Gen's query instruction, "document" / "passage" the document one, none (STS,
clustering, classification) the similarity one; sentence encoders ignore it.

    import mteb
    from encoder import load_encoder
    from evaluation.mteb_wrapper import MTEBEncoder
    mteb.evaluate(MTEBEncoder(load_encoder()), mteb.get_tasks(tasks=["SciFact"]))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from encoder import Encoder, LLM2VecGenEncoder

PROMPT_TASKS = {"query": "query", "document": "document", "passage": "document"}


def texts_of(inputs: Sequence[str] | Iterable[dict[str, Any]]) -> list[str]:
    """Flatten mteb inputs: a list of strings, or batches (a DataLoader) of ``{"text": [...]}`` dicts."""
    if isinstance(inputs, str):
        return [inputs]
    items = list(inputs)
    if all(isinstance(x, str) for x in items):
        return items
    texts: list[str] = []
    for batch in items:
        if not isinstance(batch, dict) or "text" not in batch:
            raise TypeError(f"expected strings or batches with a 'text' field, got {type(batch).__name__}")
        value = batch["text"]
        texts += [value] if isinstance(value, str) else list(value)
    return texts


def task_for(prompt_type: Any) -> str:
    """gensearch task for an mteb ``PromptType`` (enum or string); None -> "similarity"."""
    value = getattr(prompt_type, "value", prompt_type)
    return PROMPT_TASKS.get(str(value), "similarity") if value is not None else "similarity"


def _cosine(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 2-D float32 with unit rows."""
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float32)), np.atleast_2d(np.asarray(b, dtype=np.float32))
    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return a, b


class MTEBEncoder:
    """mteb ``EncoderProtocol`` over a loaded gensearch encoder (no second copy of any model)."""

    def __init__(self, encoder: Encoder, batch_size: int | None = None):
        self.encoder = encoder
        self.batch_size = batch_size

    def encode(
        self,
        inputs: Sequence[str] | Iterable[dict[str, Any]],
        *,
        task_metadata: Any = None,
        hf_split: str | None = None,
        hf_subset: str | None = None,
        prompt_type: Any = None,
        task_name: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """(N, dim) float32 L2-normalised embeddings; the instruction follows ``prompt_type``."""
        texts = texts_of(inputs)
        batch_size = kwargs.get("batch_size") or self.batch_size
        return self.encoder.encode(texts, task=task_for(prompt_type), batch_size=batch_size, show_progress_bar=kwargs.get("show_progress_bar"))

    def similarity(self, embeddings1: np.ndarray, embeddings2: np.ndarray) -> np.ndarray:
        """Cosine similarity matrix (N1, N2)."""
        a, b = _cosine(embeddings1, embeddings2)
        return a @ b.T

    def similarity_pairwise(self, embeddings1: np.ndarray, embeddings2: np.ndarray) -> np.ndarray:
        """Cosine similarity of corresponding rows (N,)."""
        a, b = _cosine(embeddings1, embeddings2)
        return np.sum(a * b, axis=1)

    @property
    def mteb_model_meta(self) -> Any:
        """mteb ``ModelMeta`` naming this encoder (and its adapter digest), or None when mteb is not installed."""
        try:
            from mteb.models import ModelMeta
        except ImportError:
            return None
        from indexer.identity import identity_of

        identity = identity_of(self.encoder)
        name = f"gensearch/{identity.encoder}-{identity.model}" if isinstance(self.encoder, LLM2VecGenEncoder) else f"gensearch/{identity.model}"
        return ModelMeta.create_empty({"name": name, "revision": identity.adapter or "local", "similarity_fn_name": "cosine"})
