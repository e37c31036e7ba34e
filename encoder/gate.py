"""The refusal gate: what the model knows about a query, read off the LLM2Vec-Gen pass we already run.

A linear probe on the mean soft prompt ``p.mean(1)`` (the K states the frozen LM would answer from)
gives the probability that the query is a *harmful request* (not merely one the model would decline,
such as "What is this FAQ?"). It is trained on the training queries' sources (``training.gate``):
harmful-request families are positives, everything else negatives, so "refuse for harm" is what it
learns. The threshold is chosen on development data only. Stored in the adapter folder::

    gate.safetensors   weight (H,), bias ()      (feature standardisation folded in)
    gate.json          threshold, feature, how it was trained and chosen

Search uses it per query (``GENSEARCH_SAFETY``): a query over the threshold gets the generative vector
alone and no keyword side (``route``), or no hits (``block``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .adapter import AdapterError

GATE_WEIGHTS = "gate.safetensors"
GATE_CONFIG = "gate.json"
FEATURE = "mean_soft_prompt"


@dataclass
class GateConfig:
    threshold: float
    hidden_size: int
    feature: str = FEATURE
    training: dict = field(default_factory=dict)  # data, regularisation, development metrics


class RefusalGate(torch.nn.Module):
    """P(harmful request) = sigmoid(w · mean_k p_k + b); ``harmful`` compares it with the threshold."""

    def __init__(self, config: GateConfig):
        super().__init__()
        self.config = config
        self.linear = torch.nn.Linear(config.hidden_size, 1)

    @property
    def threshold(self) -> float:
        return self.config.threshold

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """Soft prompts p (B, K, H) -> probability (B,)."""
        return torch.sigmoid(self.linear(p.float().mean(dim=1)).squeeze(-1))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.linear.weight.detach().float().reshape(-1).contiguous(), "bias": self.linear.bias.detach().float().reshape(())},
                  str(folder / GATE_WEIGHTS))
        (folder / GATE_CONFIG).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return folder

    @classmethod
    def from_weights(cls, weight: torch.Tensor, bias: float, config: GateConfig) -> RefusalGate:
        gate = cls(config)
        with torch.no_grad():
            gate.linear.weight.copy_(weight.float().reshape(1, -1))
            gate.linear.bias.fill_(float(bias))
        return gate.requires_grad_(False).eval()


def has_gate(folder: str | Path) -> bool:
    return (Path(folder) / GATE_CONFIG).is_file()


def load_gate(folder: str | Path, hidden_size: int) -> RefusalGate:
    """The gate stored in an adapter folder; AdapterError if it is corrupt or for another hidden size."""
    folder = Path(folder)
    try:
        config = GateConfig(**json.loads((folder / GATE_CONFIG).read_text()))
        tensors = load_file(str(folder / GATE_WEIGHTS))
    except (OSError, ValueError, TypeError, SafetensorError) as exc:
        raise AdapterError(f"the refusal gate in {folder} cannot be read ({exc}); delete {GATE_CONFIG} and {GATE_WEIGHTS} "
                           "to run without it, or re-train it with `gensearch train gate`") from exc
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if config.feature != FEATURE or weight is None or bias is None or tuple(weight.shape) != (hidden_size,) or config.hidden_size != hidden_size:
        raise AdapterError(f"the refusal gate in {folder} does not fit this backbone (hidden size {hidden_size}, feature {FEATURE}); "
                           "re-train it with `gensearch train gate`")
    return RefusalGate.from_weights(weight, float(bias), config)
