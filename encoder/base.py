"""The small interface every gensearch encoder follows, and the batching it shares.

An encoder turns texts into L2-normalised float32 vectors, sentence-transformers style::

    vectors = encoder.encode(["how do I sort a dict?"], task="query")   # (1, encoder.dim)

``Encoder`` is what the rest of gensearch sees (``name``, ``dim``, ``tokenize``, ``encode`` and
``generative``, the LLM2Vec-Gen model behind the queries, if any). ``BatchEncoder`` is the base of the
encoders that run one model: subclasses tokenise (``tokenize``) and embed one padded batch
(``embed_batch``); it does input checks, length-sorted batching (so padding is minimal and results do
not depend on batch neighbours), progress bars, normalisation and restoring the input order.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .llm2vec_gen import LLM2VecGenEncoder

log = logging.getLogger(__name__)

Task = Literal["query", "document", "similarity"]
TASKS: tuple[str, ...] = ("query", "document", "similarity")


def as_text_list(texts: str | Sequence[str]) -> list[str]:
    """Accept one string or a sequence of strings; raise a clear TypeError otherwise."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("encode() takes str, not bytes: decode the text first (e.g. data.decode('utf-8'))")
    items = list(texts)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"encode() takes strings; item {i} is {type(item).__name__}")
    return items


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    return task


@dataclass
class QueryVectors:
    """What one encoder pass knows about queries: the vectors to search with, LLM2Vec-Gen's own vectors
    (``generative``; None for sentence encoders), P(harmful request) from the refusal gate (``harm``;
    None without one) with the gate's ``threshold`` and the vectors routed queries search with (``routed``),
    and LLM2Vec-Gen's special states (``states``), from which the decoded answer and the logit lens follow
    without another backbone pass."""

    vectors: np.ndarray  # (N, dim)
    generative: np.ndarray | None = None  # (N, dim)
    harm: np.ndarray | None = None  # (N,)
    threshold: float | None = None
    states: torch.Tensor | None = None  # (N, K, H) LLM2Vec-Gen's special states: decode and logit lens reuse them
    routed: np.ndarray | None = None  # (N, dim) what a query the gate calls harmful searches with (``RefusalGate.route``)

    def harmful(self, i: int = 0) -> bool:
        """Whether the gate calls query i a harmful request (False without a gate)."""
        return self.harm is not None and self.threshold is not None and bool(self.harm[i] >= self.threshold)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class Encoder(ABC):
    """What every encoder offers: ``name``, ``dim``, ``tokenize`` and ``encode(texts, task=...)``."""

    name: str
    dim: int
    default_batch_size: int = 16

    @property
    def generative(self) -> LLM2VecGenEncoder | None:
        """The LLM2Vec-Gen encoder that embeds this encoder's queries (it decodes them and has a logit lens);
        None for sentence encoders."""
        return None

    @abstractmethod
    def tokenize(self, texts: list[str], task: str) -> list[list[int]]:
        """Token ids per text, already truncated to the model's limit."""

    @abstractmethod
    def encode(
        self,
        texts: str | Sequence[str],
        task: Task = "query",
        batch_size: int | None = None,
        normalize_embeddings: bool = True,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed texts; returns float32 array (N, dim), L2-normalised unless asked otherwise."""

    def query_vectors(self, texts: str | Sequence[str], batch_size: int | None = None) -> QueryVectors:
        """Normalised query vectors and what the encoder's pass knows besides (nothing, for a sentence encoder)."""
        return QueryVectors(self.encode(texts, task="query", batch_size=batch_size, show_progress_bar=False))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class BatchEncoder(Encoder):
    """An encoder that runs one model over length-sorted batches: subclasses give ``tokenize`` and ``embed_batch``."""

    @abstractmethod
    def embed_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        """Embeddings (B, dim) for one batch of token id lists (unpadded)."""

    def encode(
        self,
        texts: str | Sequence[str],
        task: Task = "query",
        batch_size: int | None = None,
        normalize_embeddings: bool = True,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed texts; returns float32 array (N, dim), L2-normalised unless asked otherwise."""
        items = as_text_list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.run_batches(items, task, self.embed_batch, batch_size, show_progress_bar, "encode").float()
        if normalize_embeddings:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return vectors.cpu().numpy()

    def run_batches(
        self,
        texts: list[str],
        task: str,
        fn: Callable[[list[list[int]]], torch.Tensor],
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        desc: str = "encode",
    ) -> torch.Tensor:
        """Tokenise, run ``fn`` over length-sorted batches, return its outputs stacked in input order."""
        check_task(task)
        token_ids = self.tokenize(texts, task)
        batches = length_sorted_batches([len(t) for t in token_ids], batch_size or self.default_batch_size)
        if show_progress_bar is None:
            show_progress_bar = len(batches) > 1 and log.getEffectiveLevel() <= logging.INFO
        outputs: list[torch.Tensor | None] = [None] * len(texts)
        with torch.inference_mode():
            for batch in tqdm(batches, desc=f"{desc} ({self.name})", disable=not show_progress_bar, unit="batch"):
                for i, row in zip(batch, fn([token_ids[i] for i in batch])):
                    outputs[i] = row
        return torch.stack(outputs)  # type: ignore[arg-type]
