"""Document vectors and logit-lens words in ONE forward pass, and the encoder's own tokenizer.

For symmetric LLM2Vec-Gen the special-token states ``h`` give both the embedding (``align(recon(h))``)
and the logit lens (LM head on ``h``); computing them together keeps indexing as fast as bare
``encode``. Documents embedded by a sentence encoder (also in the asym / fused modes) get no words.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from encoder import Encoder, LLM2VecGenEncoder

LENS_TOP_K = 5
LENS_WORDS = 12


def tokenizer_of(encoder: Encoder) -> Callable[[str], list[int]]:
    """``text -> token ids`` (no special tokens, no truncation) with the encoder's own tokenizer."""
    tokenizer = getattr(encoder, "tokenizer", None)
    if tokenizer is None:
        raise TypeError(f"{encoder!r} exposes no tokenizer to size chunks with")
    return lambda text: tokenizer.encode(text, add_special_tokens=False, verbose=False)


def embed_documents(encoder: Encoder, texts: list[str], batch_size: int | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """L2-normalised document vectors (N, dim) and each text's logit-lens words ([] where the documents are not
    LLM2Vec-Gen's: sentence encoders and the asym / fused modes, whose documents the teacher embeds)."""
    if not isinstance(encoder, LLM2VecGenEncoder):
        vectors = encoder.encode(texts, task="document", batch_size=batch_size, show_progress_bar=False)
        return vectors, [[] for _ in texts]
    return encoder.encode_with_lens(texts, task="document", batch_size=batch_size, top_k=LENS_TOP_K, limit=LENS_WORDS)
