"""LLM2Vec-Gen queries against teacher-embedded documents: the ``asym`` and ``fused`` retrieval modes.

The adapter is trained into the teacher's space (L_align pulls LLM2Vec-Gen(query) towards
teacher(response)), so its query vectors can be compared with documents the teacher embedded::

    llm2vec-gen        query -> LLM2Vec-Gen(query)                          document -> LLM2Vec-Gen(document)
    llm2vec-gen-asym   query -> LLM2Vec-Gen(query)                          document -> teacher(document)
    llm2vec-gen-fused  query -> unit(w teacher(query) + LLM2Vec-Gen(query)) document -> teacher(document)

Documents then cost one pass of a 110M sentence encoder instead of the backbone (about 4x faster to
index on CPU), the stored vectors do not depend on the adapter, and the query still decodes and has a
logit lens (``generative``). ``gensearch eval`` reports the three modes side by side. The teacher's weight
``w`` (``GENSEARCH_FUSION_WEIGHT``, default 8, the development sweep's pick: ``gensearch eval fusion``) leans on the
teacher for benign queries; harmful requests get LLM2Vec-Gen's own vector, pulled towards refusals, through the refusal gate (``indexer.search``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .adapter import AdapterError
from .base import Encoder, QueryVectors, Task, as_text_list, check_task
from .llm2vec_gen import LLM2VecGenEncoder

FUSE = {"llm2vec-gen-asym": False, "llm2vec-gen-fused": True}  # encoder name -> teacher(query) added to the query vector


def fuse(generative: np.ndarray, teacher: np.ndarray, teacher_weight: float = 1.0, normalize: bool = True) -> np.ndarray:
    """``unit(teacher_weight * teacher + generative)`` row by row, from unit vectors (N, D) of each model."""
    vectors = teacher_weight * teacher + generative
    if normalize:
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(np.float32)


class AsymmetricEncoder(Encoder):
    """Queries (and similarity texts) through LLM2Vec-Gen, fused with the teacher or not; documents through the teacher."""

    def __init__(self, generative: LLM2VecGenEncoder, teacher: Encoder, fuse: bool = True, teacher_weight: float = 1.0):
        made_for = (generative.config.teacher, generative.config.teacher_dim)
        if made_for != (teacher.name, teacher.dim):
            raise AdapterError(
                f"the adapter was aligned to {made_for[0]} ({made_for[1]}-d), not to {teacher.name} ({teacher.dim}-d): "
                "its query vectors cannot be compared with that encoder's documents; set GENSEARCH_TEACHER to the adapter's teacher"
            )
        if not (math.isfinite(teacher_weight) and teacher_weight >= 0):
            raise ValueError(f"the teacher's weight in the fused query vector must be a finite number >= 0, not {teacher_weight}")
        self._generative, self.teacher, self.fuse, self.teacher_weight = generative, teacher, fuse, teacher_weight
        gate = generative.gate
        if gate is not None and gate.needs_teacher and gate.config.teacher == teacher.name:
            generative._gate_teacher = teacher  # the gate's second reader is this teacher: never a second copy
        self.name = "llm2vec-gen-fused" if fuse else "llm2vec-gen-asym"
        self.dim = teacher.dim
        self.default_batch_size = teacher.default_batch_size
        self.tokenizer = getattr(teacher, "tokenizer", None)  # documents are the teacher's: chunks are sized in its tokens

    @property
    def generative(self) -> LLM2VecGenEncoder:
        return self._generative

    def tokenize(self, texts: list[str], task: str) -> list[list[int]]:
        """The tokens of the model that reads ``task``'s texts (documents: the teacher; otherwise LLM2Vec-Gen)."""
        return (self.teacher if check_task(task) == "document" else self._generative).tokenize(texts, task)

    def encode(
        self,
        texts: str | Sequence[str],
        task: Task = "query",
        batch_size: int | None = None,
        normalize_embeddings: bool = True,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Documents: the teacher's vectors. Queries: LLM2Vec-Gen's, plus the teacher's own (times
        ``teacher_weight``) when fused.

        ``batch_size`` goes to the model doing the work; fused vectors are ``fuse`` of two unit vectors,
        normalised unless ``normalize_embeddings=False``."""
        items = as_text_list(texts)
        kwargs = dict(batch_size=batch_size, show_progress_bar=show_progress_bar)
        if check_task(task) == "document":
            return self.teacher.encode(items, task=task, normalize_embeddings=normalize_embeddings, **kwargs)
        if not self.fuse:
            return self._generative.encode(items, task=task, normalize_embeddings=normalize_embeddings, **kwargs)
        generative = self._generative.encode(items, task=task, **kwargs)
        fused = fuse(generative, self.teacher.encode(items, task=task, **kwargs), self.teacher_weight, normalize_embeddings)
        return self.mapped(fused) if task == "query" and normalize_embeddings else fused

    def query_vectors(self, texts: str | Sequence[str], batch_size: int | None = None) -> QueryVectors:
        """This mode's query vectors, LLM2Vec-Gen's own and the gate's P(harmful request): one backbone pass."""
        gate = self._generative.gate
        gate_reads_teacher = gate is not None and gate.needs_teacher and gate.config.teacher == self.teacher.name
        teacher = None
        if self.fuse or gate_reads_teacher:
            teacher = self.teacher.encode(as_text_list(texts), task="query", batch_size=batch_size, show_progress_bar=False)
        own = self._generative.query_vectors(texts, batch_size, teacher_vectors=teacher if gate_reads_teacher else None)
        if not self.fuse:
            return own
        return QueryVectors(self.mapped(fuse(own.vectors, teacher, self.teacher_weight)), own.vectors, own.harm, own.threshold, own.states, own.routed)

    def mapped(self, fused: np.ndarray) -> np.ndarray:
        """Fused unit query vectors through the collection's query map, if its adapter has one (``encoder.query_map``)."""
        query_map = self._generative.query_map
        return fused if query_map is None else query_map(fused)

    def __repr__(self) -> str:
        weight = f", teacher_weight={self.teacher_weight}" if self.fuse else ""
        return f"{type(self).__name__}(name={self.name!r}, queries={self._generative.backbone.name!r}, documents={self.teacher.name!r}{weight}, dim={self.dim})"
