"""The systems compared, each a query encoder + a document encoder, loaded once and sharing one backbone.

    llm2vec-gen    LLM2Vec-Gen, symmetric: trained special tokens + projections on the frozen backbone (query /
                   document instructions); one forward pass per text, no generation
    llm2vec-gen-asym   LLM2Vec-Gen queries against teacher-embedded documents (the adapter lives in the teacher's
                   space, so this is HyDE's setting without the generation; indexing is far cheaper)
    llm2vec-gen-fused  unit(w teacher(query) + LLM2Vec-Gen(query)) against teacher-embedded documents (the product's
                   default encoder; both modes are ``encoder.asymmetric.AsymmetricEncoder``); w is
                   ``settings.fusion_weight``, or the number after ``@`` (``llm2vec-gen-fused@4``: one system per weight)
    teacher        all-mpnet-base-v2 (the model LLM2Vec-Gen is aligned to), mean pooled
    baseline       all-MiniLM-L6-v2, mean pooled
    hyde           HyDE: the backbone writes a hypothetical answer (chat template, greedy, one sample, the
                   training responses' system prompt and token budget), the teacher embeds it; documents are
                   embedded by the teacher. It is what LLM2Vec-Gen learns to shortcut, paid at query time.
    hyde-mean      the published HyDE (Gao et al., 2022): the query vector averaged with the answer vector(s),
                   teacher-embedded (it generates its own answers, so its latency is its own)
    backbone-mean  the untrained floor: mean-pooled final hidden states of the backbone, no instruction

Systems with the same ``doc_key`` embed documents identically (teacher, hyde and the asym / fused modes): the
corpus is embedded once.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from encoder import Encoder, LLM2VecGenEncoder, load_encoder
from encoder.adapter import default_adapter_path
from encoder.asymmetric import FUSE, AsymmetricEncoder
from encoder.backbone import Backbone, load_backbone
from encoder.backbone_mean import BackboneMeanEncoder
from encoder.device import resolve_device, resolve_dtype
from encoder.generation import DEFAULT_SYSTEM, Engine, load_engine, resolve_system
from encoder.settings import Settings

log = logging.getLogger(__name__)

SYSTEMS = ("llm2vec-gen", "llm2vec-gen-asym", "llm2vec-gen-fused", "teacher", "baseline", "hyde", "hyde-mean", "backbone-mean")
HYDE_PROMPT = "Please write a passage to answer the question.\nQuestion: {query}\nPassage:"  # HyDE paper's web-search prompt


class System(ABC):
    """A retrieval system: ``encode_queries`` and ``encode_documents`` -> L2-normalised float32 (N, dim)."""

    name: str
    doc_key: str
    generates: bool = False  # writes text at query time (HyDE): timed after the systems that do not (``speed``)

    @abstractmethod
    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    @abstractmethod
    def encode_documents(self, texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        """What the report records about this system."""
        return {}


class EncoderSystem(System):
    """Any gensearch ``Encoder``: queries with the query task, documents with the document task."""

    def __init__(self, name: str, encoder: Encoder, info: dict[str, Any] | None = None, doc_key: str | None = None):
        self.name = name
        self.encoder = encoder
        self.doc_key = doc_key or encoder.name
        self.info = {"model": encoder.name, "dim": encoder.dim, **(info or {})}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, task="query", show_progress_bar=len(texts) > 64)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts, task="document", show_progress_bar=len(texts) > 64)

    def describe(self) -> dict[str, Any]:
        return self.info


class HydeSystem(System):
    """HyDE: embed a generated hypothetical answer instead of the query (Gao et al., 2022)."""

    generates = True

    def __init__(self, engine: Engine, teacher: Encoder, max_new_tokens: int = 128, system: str | None = None):
        self.name = "hyde"
        self.engine = engine
        self.backbone = engine.backbone
        self.teacher = teacher
        self.doc_key = teacher.name
        self.max_new_tokens = max_new_tokens
        self.system_label, self.system_prompt = resolve_system(system or DEFAULT_SYSTEM)
        self.last_hypotheticals: list[str] = []

    def hypothetical(self, texts: list[str]) -> list[str]:
        """The backbone's greedy answer to the HyDE prompt for each query (EOS string removed)."""
        prompts = [HYDE_PROMPT.format(query=t) for t in texts]
        out: list[str] = []
        step = 64
        for start in tqdm(range(0, len(prompts), step), desc="hyde generate", unit="batch", disable=len(prompts) <= step):
            answers = self.engine.answer(prompts[start : start + step], system=self.system_prompt, max_new_tokens=self.max_new_tokens)
            out += [a.text for a in answers]
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
            **self.engine.describe(),
            "system_prompt": self.system_label,
            "prompt": HYDE_PROMPT,
        }


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class HydeMeanSystem(System):
    """The published HyDE: mean of the query's and the hypothetical answer's teacher vectors (one greedy answer)."""

    generates = True

    def __init__(self, hyde: HydeSystem):
        self.name, self.hyde, self.doc_key = "hyde-mean", hyde, hyde.doc_key

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        teacher = self.hyde.teacher
        answers = self.hyde.hypothetical(texts)
        both = teacher.encode(texts, task="query", show_progress_bar=False) + teacher.encode(answers, task="document", show_progress_bar=False)
        return unit(both).astype(np.float32)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.hyde.encode_documents(texts)

    def describe(self) -> dict[str, Any]:
        return {**self.hyde.describe(), "query_vector": "unit(teacher(query) + teacher(answer))"}


@dataclass
class Loaded:
    """The systems of one run and the shared models they were built from."""

    systems: list[System]
    llm: LLM2VecGenEncoder | None = None
    teacher: Encoder | None = None
    backbone: Backbone | None = None
    adapter_trained: bool = True  # False: LLM2Vec-Gen runs a fresh adapter (the report then says its numbers are a floor)
    info: dict[str, Any] = field(default_factory=dict)


WEIGHTED = "llm2vec-gen-fused"  # the one system that takes a teacher weight after "@"


def parse_system(name: str) -> tuple[str, float | None]:
    """``"llm2vec-gen-fused@4"`` -> ``("llm2vec-gen-fused", 4.0)``; a plain name -> ``(name, None)``."""
    base, at, weight = name.partition("@")
    if not at:
        return name, None
    try:
        value = float(weight)
    except ValueError:
        value = -1.0
    if base != WEIGHTED or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name!r}: only {WEIGHTED} takes a teacher weight, as {WEIGHTED}@W with a finite W >= 0 (e.g. {WEIGHTED}@2)")
    return base, value


def base_names(names: list[str]) -> set[str]:
    """The systems named, without their weights."""
    return {parse_system(n)[0] for n in names}


def check_names(names: list[str]) -> list[str]:
    """The requested system names, validated, in the canonical order (weighted variants after their system)."""
    unknown = [n for n in names if parse_system(n)[0] not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)} (and {WEIGHTED}@W)")
    if not names:
        raise ValueError(f"no systems selected; choose from {', '.join(SYSTEMS)}")
    unique = {parse_system(n): n for n in reversed(names)}  # "@4" and "@4.0" are one system: the first spelling stays
    order = lambda key: (SYSTEMS.index(key[0]), -1.0 if key[1] is None else key[1])  # noqa: E731
    return [unique[key] for key in sorted(unique, key=order)]


def load_systems(
    names: list[str],
    *,
    backbone: str | None = None,
    adapter: str | Path | None = None,
    hyde_tokens: int = 128,
    hyde_system: str | None = None,
    need_teacher: bool = False,
    settings: Settings,
) -> Loaded:
    """Load the named systems; the backbone is loaded once and shared (LLM2Vec-Gen, HyDE, backbone-mean)."""
    from indexer.identity import adapter_digest

    names = check_names(names)
    bases = base_names(names)
    loaded = Loaded(systems=[])
    if {"llm2vec-gen", "llm2vec-gen-asym", "llm2vec-gen-fused"} & bases:
        loaded.llm = load_encoder(backbone, adapter=adapter, settings=settings)  # type: ignore[assignment]
        loaded.backbone = loaded.llm.backbone
        adapter_path = adapter or settings.adapter or default_adapter_path(loaded.llm.backbone.name, settings.adapters_path)
        loaded.adapter_trained = adapter_path is not None
    elif {"hyde", "hyde-mean", "backbone-mean"} & bases:
        device = resolve_device(settings.device)
        loaded.backbone = load_backbone(backbone or settings.backbone, device, resolve_dtype(settings.dtype, device), settings)
    if need_teacher or {"teacher", "hyde", "hyde-mean", "llm2vec-gen-asym", "llm2vec-gen-fused"} & bases:
        loaded.teacher = load_encoder("teacher", settings=settings)
    hyde: HydeSystem | None = None

    def make_hyde() -> HydeSystem:
        engine = load_engine(settings.generation_engine, loaded.backbone, batch_size=settings.batch_size, settings=settings)
        return HydeSystem(engine, loaded.teacher, hyde_tokens, hyde_system)

    for name in names:
        base, weight = parse_system(name)
        if name == "llm2vec-gen":
            info = {"backbone": loaded.llm.backbone.name, "adapter": adapter_digest(loaded.llm), "adapter_trained": loaded.adapter_trained}
            loaded.systems.append(EncoderSystem(name, loaded.llm, info))
        elif name == "teacher":
            loaded.systems.append(EncoderSystem(name, loaded.teacher))
        elif name == "baseline":
            loaded.systems.append(EncoderSystem(name, load_encoder("baseline", settings=settings)))
        elif name == "hyde":
            hyde = make_hyde()
            loaded.systems.append(hyde)
        elif base in FUSE:
            teacher_weight = settings.fusion_weight if weight is None else weight
            mode = AsymmetricEncoder(loaded.llm, loaded.teacher, fuse=FUSE[base], teacher_weight=teacher_weight)
            queries = f"{teacher_weight:g} teacher + {loaded.llm.backbone.name}" if mode.fuse else loaded.llm.backbone.name
            info = {"queries": queries, "documents": loaded.teacher.name, **({"teacher_weight": teacher_weight} if mode.fuse else {})}
            loaded.systems.append(EncoderSystem(name, mode, {"backbone": loaded.llm.backbone.name, **info}, doc_key=loaded.teacher.name))
        elif name == "hyde-mean":
            loaded.systems.append(HydeMeanSystem(hyde or make_hyde()))
        elif name == "backbone-mean":
            mean = BackboneMeanEncoder(loaded.backbone, max_length=settings.max_length, batch_size=settings.batch_size)
            loaded.systems.append(EncoderSystem(name, mean, {"backbone": loaded.backbone.name}))
    if loaded.backbone is not None:
        loaded.info["backbone"] = loaded.backbone.name
        loaded.info["dtype"] = str(loaded.backbone.model.dtype).replace("torch.", "")
    if loaded.llm is not None:
        loaded.info["encode_path"] = getattr(loaded.llm, "encode_path", "eager")  # what took effect, not only what was asked
    if loaded.teacher is not None:
        loaded.info["teacher_dtype"] = str(loaded.teacher.model.dtype).replace("torch.", "")
        loaded.info["teacher_packed"] = bool(getattr(loaded.teacher, "packed", False))
    return loaded
