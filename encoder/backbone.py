"""Load a frozen backbone LM once per process: registry name, local folder or hub id."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .fetch import MANIFEST, ensure_model
from .registry import get_spec, resolve_name
from .settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backbone:
    """A loaded, frozen causal LM, its tokenizer and its identity (for adapter compatibility checks)."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    sha256: str | None  # hash of the pinned source weights, when known

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def eos_token_ids(self) -> list[int]:
        """Every token that ends a turn: the tokenizer's EOS plus the generation config's."""
        ids = {self.tokenizer.eos_token_id}
        configured = self.model.generation_config.eos_token_id
        ids.update(configured if isinstance(configured, list) else [configured])
        return sorted(i for i in ids if i is not None)

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id


def backbone_source(name_or_path: str, settings: Settings) -> tuple[str, str, str | None]:
    """(display name, path or hub id to load from, pinned source hash) for a backbone reference."""
    registry_name = resolve_name(name_or_path)
    if registry_name is not None and get_spec(registry_name).role == "backbone":
        folder = ensure_model(registry_name, settings)
        manifest = json.loads((folder / MANIFEST).read_text())
        return registry_name, str(folder), manifest.get("source_sha256")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve().name, str(path.resolve()), None
    return name_or_path, name_or_path, None  # a hub id, for users with hub access


def load_backbone(
    name_or_path: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    settings: Settings | None = None,
) -> Backbone:
    """The frozen backbone, loaded once per (source, device, dtype) and shared by every caller.
    A public entry point: ``settings`` defaults to ``get_settings()`` (the environment)."""
    settings = settings or get_settings()
    name, source, sha = backbone_source(name_or_path or settings.backbone, settings)
    return _load_cached(name, source, sha, str(device), dtype)


@lru_cache(maxsize=4)
def _load_cached(name: str, source: str, sha: str | None, device: str, dtype: torch.dtype) -> Backbone:
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype).to(device).eval()
    model.requires_grad_(False)
    log.info("loaded backbone %s (%s, %s) in %.1f s", name, device, dtype, time.perf_counter() - started)
    return Backbone(name=name, model=model, tokenizer=tokenizer, sha256=sha)
