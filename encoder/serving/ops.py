"""What the model thread does with one batch: embed, decode or logit-lens a list of texts.

Every operation takes the batch's texts and returns one result per text. Tokenisation happens here too,
on the model thread, because a fast tokenizer must not be used from two threads at once.
Batch keys are plain tuples so the batcher can group requests that can share a forward pass:

    ("embed", task)                     -> (vector float32 (dim,), prompt token count, safety dict or None) per text
    ("decode", task, max_new_tokens)    -> decoded text per text
    ("lens", task, top_k, words)        -> (tokens [position][rank], distinct words) per text
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..base import Encoder
from ..llm2vec_gen import LLM2VecGenEncoder, lens_keywords


class ModelOps:
    """Runs batches for the server against one loaded encoder (call only from the model thread)."""

    def __init__(self, encoder: Encoder, batch_size: int, safety: str = "route"):
        self.encoder = encoder
        self.batch_size = batch_size
        self.safety = safety  # GENSEARCH_SAFETY: what a query the refusal gate calls a harmful request gets

    def run_batch(self, key: Hashable, texts: list[str]) -> list[Any]:
        """Dispatch a batch on its key's operation name."""
        op, *params = key  # type: ignore[misc]
        if op == "embed":
            return self.embed(texts, *params)
        if op == "decode":
            return self.decode(texts, *params)
        if op == "lens":
            return self.lens(texts, *params)
        raise ValueError(f"unknown operation {op!r}")

    def embed(self, texts: list[str], task: str) -> list[tuple[Any, int, dict | None]]:
        """Unit-norm vectors, the number of tokens the model read for each text (instruction included) and, for
        queries through a gated encoder, what the refusal gate said: a harmful request gets LLM2Vec-Gen's own
        vector unless safety is off (a service cannot withhold a vector: ``block`` is reported, the client decides)."""
        tokens = [len(ids) for ids in self.encoder.tokenize(texts, task)]
        if task != "query" or self.safety == "off" or getattr(self.encoder.generative, "gate", None) is None:
            vectors = self.encoder.encode(texts, task=task, batch_size=self.batch_size, show_progress_bar=False)
            return [(v, n, None) for v, n in zip(vectors, tokens)]
        read = self.encoder.query_vectors(texts, batch_size=self.batch_size)
        out = []
        for i, n in enumerate(tokens):
            harmful = read.harmful(i)
            vector = read.routed[i] if harmful else read.vectors[i]
            safety = {"probability": round(float(read.harm[i]), 4), "threshold": read.threshold, "harmful": harmful,
                      "action": self.safety if harmful else "none"}
            out.append((vector, n, safety))
        return out

    def decode(self, texts: list[str], task: str, max_new_tokens: int) -> list[str]:
        return self._llm2vec().decode(texts, task=task, max_new_tokens=max_new_tokens, batch_size=self.batch_size)

    def lens(self, texts: list[str], task: str, top_k: int, words: int) -> list[tuple[list[list[str]], list[str]]]:
        encoder = self._llm2vec()
        skip = set(encoder.backbone.tokenizer.all_special_tokens)
        rows = encoder.logit_lens(texts, task=task, top_k=top_k, batch_size=self.batch_size)
        return [(row, lens_keywords(row, words, skip)) for row in rows]

    def _llm2vec(self) -> LLM2VecGenEncoder:
        if self.encoder.generative is None:
            raise TypeError(f"{self.encoder.name} is not an LLM2Vec-Gen encoder")
        return self.encoder.generative
