"""The systems compared, each a query encoder + a document encoder, loaded once and sharing one backbone.

    llm2vec-gen    LLM2Vec-Gen: trained special tokens + projections on the frozen backbone (query / document
                   instructions); one forward pass per text, no generation
    teacher        all-mpnet-base-v2 (the model LLM2Vec-Gen is aligned to), mean pooled
    baseline       all-MiniLM-L6-v2, mean pooled
    hyde           HyDE: the backbone writes a hypothetical answer (chat template, greedy, one sample, the
                   training responses' system prompt and token budget), the teacher embeds it; documents are
                   embedded by the teacher. It is what LLM2Vec-Gen learns to shortcut, paid at query time.
    backbone-mean  the untrained floor: mean-pooled final hidden states of the backbone, no instruction

Systems with the same ``doc_key`` embed documents identically (teacher and hyde): the corpus is embedded once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from encoder import Encoder, LLM2VecGenEncoder, load_encoder
from encoder.adapter import default_adapter_path
from encoder.backbone import Backbone, load_backbone
from encoder.backbone_mean import BackboneMeanEncoder
from encoder.device import resolve_device, resolve_dtype
from encoder.settings import Settings, get_settings

log = logging.getLogger(__name__)

SYSTEMS = ("llm2vec-gen", "teacher", "baseline", "hyde", "backbone-mean")
HYDE_PROMPT = "Please write a passage to answer the question.\nQuestion: {query}\nPassage:"  # HyDE paper's web-search prompt


class System(ABC):
    """A retrieval system: ``encode_queries`` and ``encode_documents`` -> L2-normalised float32 (N, dim)."""

    name: str
    doc_key: str

    @abstractmethod
    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    @abstractmethod
    def encode_documents(self, texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        """What the report records about this system."""
        return {}


class EncoderSystem(System):
    """Any gensearch ``Encoder``: queries with the query task, documents with the document task."""

    def __init__(self, name: str, encoder: Encoder, info: dict[str, Any] | None = None):
        self.name = name
        self.encoder = encoder
        self.doc_key = encoder.name
        self.info = {"model": encoder.name, "dim": encoder.dim, **(info or {})}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, task="query", show_progress_bar=len(texts) > 64)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, task="document", show_progress_bar=len(texts) > 64)

    def describe(self) -> dict[str, Any]:
        return self.info


class HydeSystem(System):
    """HyDE: embed a generated hypothetical answer instead of the query (Gao et al., 2022)."""

    def __init__(self, backbone: Backbone, teacher: Encoder, max_new_tokens: int = 128, system: str | None = None, batch_size: int = 16):
        from training.generate import DEFAULT_SYSTEM, resolve_system

        self.name = "hyde"
        self.backbone = backbone
        self.teacher = teacher
        self.doc_key = teacher.name
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.system_label, self.system_prompt = resolve_system(system or DEFAULT_SYSTEM)
        self.last_hypotheticals: list[str] = []

    def hypothetical(self, texts: list[str]) -> list[str]:
        """The backbone's greedy answer to the HyDE prompt for each query (EOS string removed)."""
        from training.generate import answer_batch

        prompts = [HYDE_PROMPT.format(query=t) for t in texts]
        out: list[str] = []
        starts = range(0, len(prompts), self.batch_size)
        for start in tqdm(starts, desc="hyde generate", unit="batch", disable=len(starts) < 2):
            batch = answer_batch(self.backbone, prompts[start : start + self.batch_size], system=self.system_prompt, max_new_tokens=self.max_new_tokens)
            out += [a.response[: len(a.response) - len(a.eos)].strip() if a.eos else a.response.strip() for a in batch]
        self.last_hypotheticals = out
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.teacher.encode(self.hypothetical(texts), task="document", show_progress_bar=False)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.teacher.encode(texts, task="document", show_progress_bar=len(texts) > 64)

    def describe(self) -> dict[str, Any]:
        return {
            "model": f"{self.backbone.name} -> {self.teacher.name}",
            "dim": self.teacher.dim,
            "max_new_tokens": self.max_new_tokens,
            "system_prompt": self.system_label,
            "prompt": HYDE_PROMPT,
        }


@dataclass
class Loaded:
    """The systems of one run and the shared models they were built from."""

    systems: list[System]
    llm: LLM2VecGenEncoder | None = None
    teacher: Encoder | None = None
    backbone: Backbone | None = None
    info: dict[str, Any] = field(default_factory=dict)


def check_names(names: list[str]) -> list[str]:
    """The requested system names, validated, in the canonical order."""
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if not names:
        raise ValueError(f"no systems selected; choose from {', '.join(SYSTEMS)}")
    return [n for n in SYSTEMS if n in names]


def load_systems(
    names: list[str],
    *,
    backbone: str | None = None,
    adapter: str | Path | None = None,
    hyde_tokens: int = 128,
    hyde_system: str | None = None,
    need_teacher: bool = False,
    settings: Settings | None = None,
) -> Loaded:
    """Load the named systems; the backbone is loaded once and shared (LLM2Vec-Gen, HyDE, backbone-mean)."""
    from indexer.identity import adapter_digest

    settings = settings or get_settings()
    names = check_names(names)
    loaded = Loaded(systems=[])
    if "llm2vec-gen" in names:
        loaded.llm = load_encoder(backbone, adapter=adapter, settings=settings)  # type: ignore[assignment]
        loaded.backbone = loaded.llm.backbone
    elif {"hyde", "backbone-mean"} & set(names):
        device = resolve_device(settings.device)
        loaded.backbone = load_backbone(backbone or settings.backbone, device, resolve_dtype(settings.dtype, device), settings)
    if need_teacher or {"teacher", "hyde"} & set(names):
        loaded.teacher = load_encoder("teacher", settings=settings)
    for name in names:
        if name == "llm2vec-gen":
            adapter_path = adapter or settings.adapter or default_adapter_path(loaded.llm.backbone.name)
            info = {"backbone": loaded.llm.backbone.name, "adapter": adapter_digest(loaded.llm), "adapter_trained": adapter_path is not None}
            loaded.systems.append(EncoderSystem(name, loaded.llm, info))
        elif name == "teacher":
            loaded.systems.append(EncoderSystem(name, loaded.teacher))
        elif name == "baseline":
            loaded.systems.append(EncoderSystem(name, load_encoder("baseline", settings=settings)))
        elif name == "hyde":
            loaded.systems.append(HydeSystem(loaded.backbone, loaded.teacher, hyde_tokens, hyde_system, settings.batch_size))
        elif name == "backbone-mean":
            mean = BackboneMeanEncoder(loaded.backbone, max_length=settings.max_length, batch_size=settings.batch_size)
            loaded.systems.append(EncoderSystem(name, mean, {"backbone": loaded.backbone.name}))
    if loaded.backbone is not None:
        loaded.info["backbone"] = loaded.backbone.name
        loaded.info["dtype"] = str(loaded.backbone.model.dtype).replace("torch.", "")
    return loaded
