"""The untrained floor: mean of a frozen backbone's final hidden states (after the final norm) over the text.

No instruction, no special tokens, no training: what "just average the LLM's states" gives, to show
what LLM2Vec-Gen's trained tokens add. Shares the already loaded ``Backbone`` (no second copy).
"""

from __future__ import annotations

import torch

from .backbone import Backbone
from .base import BatchEncoder
from .sentence import mean_pool


class BackboneMeanEncoder(BatchEncoder):
    """``mean_pool(backbone(text).last_hidden_state)``; ``task`` is ignored."""

    def __init__(self, backbone: Backbone, name: str = "backbone-mean", max_length: int = 512, batch_size: int = 16):
        self.backbone = backbone
        self.name = name
        self.dim = backbone.hidden_size
        self.max_length = max_length
        self.default_batch_size = batch_size

    def tokenize(self, texts: list[str], task: str) -> list[list[int]]:
        return self.backbone.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def embed_batch(self, token_ids: list[list[int]]) -> torch.Tensor:
        width = max(len(t) for t in token_ids)
        device = self.backbone.model.device
        ids = torch.tensor([t + [self.backbone.pad_token_id] * (width - len(t)) for t in token_ids], device=device)
        mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in token_ids], device=device)
        hidden = self.backbone.model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state  # right padding
        return mean_pool(hidden.float(), mask)
