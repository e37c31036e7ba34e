"""Mean-pooled sentence encoders (the teacher all-mpnet-base-v2 and the baseline all-MiniLM-L6-v2).

Plain ``transformers.AutoModel`` + attention-masked mean pooling + L2 normalisation, which is
exactly what sentence-transformers does for these two models. No instructions: ``task`` is ignored.
The model runs in the dtype it is given (``load_encoder`` passes ``settings.dtype``: bf16 where the CPU
has native bf16, about 2x faster than fp32 with vectors within cosine 0.9999); pooling is always fp32.
``pack=True`` (``GENSEARCH_ENCODE_PATH=packed``, the default) prepacks the linear weights for oneDNN on the CPU
(``encoder.packed``): these encoders never train.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from .base import BatchEncoder
from .packed import pack_linears, packing_works


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, H) over positions where ``mask`` (B, T) is 1 -> (B, H), summed in fp32."""
    weights = mask.unsqueeze(-1).float()
    return (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def configured_max_length(folder: str | Path, fallback: int = 384) -> int:
    """The ``max_seq_length`` a sentence-transformers folder declares (``sentence_bert_config.json``), else ``fallback``."""
    config = Path(folder) / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return fallback


class MeanPoolEncoder(BatchEncoder):
    """A BERT-style sentence encoder loaded from a local folder; inputs are cut at the folder's own
    ``max_seq_length`` (256 for all-MiniLM-L6-v2, 384 for all-mpnet-base-v2) unless ``max_length`` says otherwise."""

    def __init__(
        self,
        folder: str | Path,
        name: str,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        max_length: int | None = None,
        batch_size: int = 32,
        pack: bool = False,
    ):
        self.name = name
        self.default_batch_size = batch_size
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder), dtype=dtype).to(device).eval()
        self.model.requires_grad_(False)
        self.packed = pack and packing_works(device, dtype)
        if self.packed:
            pack_linears(self.model)
        self.dim = self.model.config.hidden_size
        self.max_length = min(max_length or configured_max_length(folder), self.tokenizer.model_max_length)

    def tokenize(self, texts: list[str], task: str) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def embed_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        batch = self.tokenizer.pad({"input_ids": token_ids}, return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state
        return mean_pool(hidden, batch["attention_mask"])
