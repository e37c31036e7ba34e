"""Sentence encoders (the teacher all-mpnet-base-v2 and the baseline all-MiniLM-L6-v2), loaded by sentence-transformers.

``SentenceEncoder`` is a ``SentenceTransformer`` built from the model's own folder: its modules.json (Transformer,
Pooling, Normalize), its pooling config and its ``max_seq_length`` (256 for all-MiniLM-L6-v2, 384 for
all-mpnet-base-v2) are the reference's, not ours. No instructions: ``task`` is ignored. The model runs in the dtype
it is given (``load_encoder`` passes ``settings.dtype``: bf16 where the CPU has native bf16, about 2x faster than
fp32 with vectors within cosine 0.9999). ``pack=True`` (``GENSEARCH_ENCODE_PATH=packed``, the default) prepacks
the transformer's linear weights for oneDNN on the CPU (``encoder.packed``): these encoders never train.
``mean_pool`` is the masked mean other encoders here use (``backbone_mean``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .base import BatchEncoder
from .packed import pack_linears, packing_works


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, H) over positions where ``mask`` (B, T) is 1 -> (B, H), summed in fp32."""
    weights = mask.unsqueeze(-1).float()
    return (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class SentenceEncoder(BatchEncoder):
    """A sentence-transformers model from a local folder, behind gensearch's ``Encoder`` interface (length-sorted
    batches of gensearch's tokenisation; the forward pass and pooling are sentence-transformers' own)."""

    def __init__(
        self,
        folder: str | Path,
        name: str,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        batch_size: int = 32,
        pack: bool = False,
    ):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.default_batch_size = batch_size
        self.device = device
        self.model = SentenceTransformer(str(folder), device=str(device), model_kwargs={"dtype": dtype}, local_files_only=True).eval()
        self.model.requires_grad_(False)
        self.tokenizer = self.model.tokenizer
        self.packed = pack and packing_works(device, dtype)
        if self.packed:
            pack_linears(self.model)
        self.dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else self.model.get_sentence_embedding_dimension()

    @property
    def max_length(self) -> int:
        """Tokens per input: the model's own ``max_seq_length``."""
        return self.model.max_seq_length

    def tokenize(self, texts: list[str], task: str) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def embed_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        features = self.tokenizer.pad({"input_ids": token_ids}, return_tensors="pt").to(self.device)
        return self.model(dict(features))["sentence_embedding"].float()
