"""The refusal gate: what the model knows about a query, read off the LLM2Vec-Gen pass we already run.

A linear probe on the mean soft prompt ``p.mean(1)`` (the K states the frozen LM would answer from) and,
for gates trained with it, the teacher's query vector (the fused mode computes it anyway) gives the
probability that the query is a *harmful request* (not merely one the model would decline, such as
"What is this FAQ?"). It is trained on the training queries' sources (``training.gate``):
harmful-request families are positives, everything else negatives, so "refuse for harm" is what it
learns. The threshold is chosen on development data only. Stored in the adapter folder::

    gate.safetensors   weight (H + T,), bias ()  (T = 0, or the teacher's dim; feature standardisation folded in),
                       anchor (D,) where routed queries are pulled (optional)
    gate.json          threshold, feature, anchor_weight, how it was trained and chosen

Search uses it per query (``GENSEARCH_SAFETY``): a query over the threshold gets the routed vector
(``route``: LLM2Vec-Gen's own vector, pulled towards the model's refusals by ``anchor_weight``; no keyword
side), or no hits (``block``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .adapter import AdapterError

GATE_WEIGHTS = "gate.safetensors"
GATE_CONFIG = "gate.json"
FEATURE = "mean_soft_prompt"
FEATURE_WITH_TEACHER = "mean_soft_prompt+teacher_query"


@dataclass
class GateConfig:
    threshold: float
    hidden_size: int
    feature: str = FEATURE
    training: dict = field(default_factory=dict)  # data, regularisation, development metrics
    teacher: str | None = None  # the sentence encoder whose query vector is the second feature (FEATURE_WITH_TEACHER)
    teacher_dim: int = 0
    anchor_weight: float = 0.0  # routed vector = unit(g + anchor_weight * anchor) (``training.anchor``)
    anchor: dict = field(default_factory=dict)  # how the anchor was made and its weight chosen


class RefusalGate(torch.nn.Module):
    """P(harmful request) = sigmoid(w_p · mean_k p_k + w_t · teacher(q) + b), the teacher term only for gates trained
    with it; ``harmful`` compares it with the threshold. The soft-prompt part is computed in the LLM2Vec-Gen pass
    (``soft_logit``), the teacher's part where its query vector is (``probability``)."""

    def __init__(self, config: GateConfig, anchor: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        self.linear = torch.nn.Linear(config.hidden_size + config.teacher_dim, 1)
        self.anchor = None if anchor is None else anchor.float().reshape(-1)  # (D,) unit: the model's refusals

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def needs_teacher(self) -> bool:
        return self.config.teacher_dim > 0

    def soft_logit(self, p: torch.Tensor) -> torch.Tensor:
        """Soft prompts p (B, K, H) -> the soft-prompt part of the logit, bias included (B,)."""
        w = self.linear.weight[0, : self.config.hidden_size]
        return p.float().mean(dim=1) @ w + self.linear.bias[0]

    def probability(self, soft_logit: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) soft-prompt logits and, for a gate that reads it, the teacher's unit query vectors (B, T) -> P (B,)."""
        if self.needs_teacher:
            if teacher is None:
                raise ValueError(f"this refusal gate also reads the query vector of {self.config.teacher}: pass it")
            soft_logit = soft_logit + teacher.float().to(soft_logit.device) @ self.linear.weight[0, self.config.hidden_size :]
        return torch.sigmoid(soft_logit)

    def forward(self, p: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
        """Soft prompts p (B, K, H) [and teacher query vectors (B, T)] -> probability (B,)."""
        return self.probability(self.soft_logit(p), teacher)

    def route(self, vectors: np.ndarray) -> np.ndarray:
        """LLM2Vec-Gen's unit query vectors (B, D) -> what a routed query searches with: unit(g + w * anchor), w the
        ``anchor_weight`` (g itself without an anchor)."""
        if self.anchor is None or not self.config.anchor_weight:
            return vectors
        moved = vectors + self.config.anchor_weight * self.anchor.numpy()[None, :]
        return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(vectors.dtype)

    def with_anchor(self, anchor: torch.Tensor, weight: float, report: dict) -> RefusalGate:
        """This gate with routed queries pulled towards ``anchor`` (D,) by ``weight``."""
        config = replace(self.config, anchor_weight=float(weight), anchor=report)
        return RefusalGate.from_weights(self.linear.weight.detach()[0], float(self.linear.bias), config, anchor)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.linear.weight.detach().float().reshape(-1).contiguous(), "bias": self.linear.bias.detach().float().reshape(())}
        if self.anchor is not None:
            tensors["anchor"] = self.anchor.contiguous()
        save_file(tensors, str(folder / GATE_WEIGHTS))
        (folder / GATE_CONFIG).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return folder

    @classmethod
    def from_weights(cls, weight: torch.Tensor, bias: float, config: GateConfig, anchor: torch.Tensor | None = None) -> RefusalGate:
        gate = cls(config, anchor)
        with torch.no_grad():
            gate.linear.weight.copy_(weight.float().reshape(1, -1))
            gate.linear.bias.fill_(float(bias))
        return gate.requires_grad_(False).eval()


def has_gate(folder: str | Path) -> bool:
    return (Path(folder) / GATE_CONFIG).is_file()


def load_gate(folder: str | Path, hidden_size: int, dim: int | None = None) -> RefusalGate:
    """The gate stored in an adapter folder; AdapterError if it is corrupt, for another hidden size or its anchor
    is not of the embedding ``dim``."""
    folder = Path(folder)
    try:
        config = GateConfig(**json.loads((folder / GATE_CONFIG).read_text()))
        tensors = load_file(str(folder / GATE_WEIGHTS))
    except (OSError, ValueError, TypeError, SafetensorError) as exc:
        raise AdapterError(f"the refusal gate in {folder} cannot be read ({exc}); delete {GATE_CONFIG} and {GATE_WEIGHTS} "
                           "to run without it, or re-train it with `gensearch train gate`") from exc
    weight, bias = tensors.get("weight"), tensors.get("bias")
    feature = FEATURE_WITH_TEACHER if config.teacher_dim else FEATURE
    if (config.feature != feature or weight is None or bias is None or config.hidden_size != hidden_size
            or tuple(weight.shape) != (hidden_size + config.teacher_dim,) or bool(config.teacher) != bool(config.teacher_dim)):
        raise AdapterError(f"the refusal gate in {folder} does not fit this backbone (hidden size {hidden_size}, feature {config.feature}); "
                           "re-train it with `gensearch train gate`")
    anchor = tensors.get("anchor")
    if (config.anchor_weight and anchor is None) or (anchor is not None and dim is not None and tuple(anchor.shape) != (dim,)):
        raise AdapterError(f"the refusal gate in {folder} has no anchor of dim {dim} for its anchor_weight; re-train it with `gensearch train gate`")
    return RefusalGate.from_weights(weight, float(bias), config, anchor)
