"""Document vectors and logit-lens words in ONE forward pass, and the encoder's own tokenizer.

For LLM2Vec-Gen the special-token states ``h`` give both the embedding (``align(recon(h))``) and
the logit lens (LM head on ``h``); computing them together keeps indexing as fast as bare
``encode``. Sentence encoders have no lens: their chunks get no words.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from encoder import Encoder, LLM2VecGenEncoder
from encoder.llm2vec_gen import lens_keywords

LENS_TOP_K = 5
LENS_WORDS = 12


def tokenizer_of(encoder: Encoder) -> Callable[[str], list[int]]:
    """``text -> token ids`` (no special tokens, no truncation) with the encoder's own tokenizer."""
    tokenizer = encoder.backbone.tokenizer if isinstance(encoder, LLM2VecGenEncoder) else getattr(encoder, "tokenizer", None)
    if tokenizer is None:
        raise TypeError(f"{encoder!r} exposes no tokenizer to size chunks with")
    return lambda text: tokenizer.encode(text, add_special_tokens=False, verbose=False)


def embed_documents(encoder: Encoder, texts: list[str], batch_size: int | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """L2-normalised document vectors (N, dim) and each text's logit-lens words ([] for sentence encoders)."""
    if not isinstance(encoder, LLM2VecGenEncoder):
        vectors = encoder.encode(texts, task="document", batch_size=batch_size, show_progress_bar=False)
        return vectors, [[] for _ in texts]
    h = encoder.run_batches(texts, "document", encoder.special_states_batch, batch_size, show_progress_bar=False)
    with torch.inference_mode():
        vectors = F.normalize(encoder.model.project(h)[1].float(), dim=-1).cpu().numpy()
        lens_ids = encoder.model.lens(h, LENS_TOP_K).tolist()
    decode = encoder.backbone.tokenizer.decode
    skip = set(encoder.backbone.tokenizer.all_special_tokens)
    words = [lens_keywords([[decode([t]) for t in position] for position in row], LENS_WORDS, skip) for row in lens_ids]
    return vectors, words
