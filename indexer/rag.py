"""LlamaIndex retrieval and RAG over a gensearch collection, fully offline.

``retriever()`` wraps a collection (built by ``gensearch index``) as a LlamaIndex retriever;
``query_engine()`` adds LlamaIndex's ``CitationQueryEngine`` answering with the frozen backbone
already in memory; ``ask()`` returns the answer and its numbered sources.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from llama_index.core import PromptTemplate
from llama_index.core.query_engine import CitationQueryEngine
from llama_index.core.retrievers import BaseRetriever
from qdrant_client import QdrantClient

from encoder import Encoder
from encoder.backbone import Backbone, load_backbone
from encoder.device import resolve_device, resolve_dtype
from encoder.settings import Settings

from .filters import SearchFilter
from .llama import BackboneLLM, GensearchRetriever, hit_of
from .search import Hit, Mode, SafetyMode, check_query

_CITE = re.compile(r"\[(\d+)\]")

# Shorter than LlamaIndex's default citation prompts, and without their worked example, which small
# backbones (0.5B) copy verbatim instead of answering.
QA_PROMPT = PromptTemplate(
    "Use the numbered sources to answer the question. Cite them like [1].\n\n{context_str}\n\n"
    "Question: {query_str}\nAnswer:"
)
REFINE_PROMPT = PromptTemplate(
    "Improve the existing answer using only the numbered sources below, citing them as [1], [2], ... "
    "If they do not help, repeat the existing answer.\nExisting answer: {existing_answer}\n\n{context_msg}\n\n"
    "Question: {query_str}\nAnswer: "
)


@dataclass
class Citation(Hit):
    """A hit given to the LLM as source ``[n]``; ``cited`` if the answer refers to it."""

    n: int = 0
    cited: bool = False


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]

    def as_dict(self) -> dict:
        return asdict(self)


def retriever(
    client: QdrantClient, collection: str, encoder: Encoder, k: int = 5, filters: SearchFilter | None = None, mode: Mode = "auto",
    safety: SafetyMode = "route",
) -> BaseRetriever:
    """Top-k LlamaIndex retriever over a gensearch collection: ``search`` itself, so it returns only what
    ``filters`` allows (default: an anonymous caller, public chunks only), filtered inside the Qdrant query,
    and routes or blocks what the refusal gate reads as a harmful request (``safety``)."""
    return GensearchRetriever(client, collection, encoder, k, filters, mode, safety)


def backbone_for(encoder: Encoder, settings: Settings) -> Backbone:
    """The LLM2Vec-Gen encoder's own backbone; for sentence encoders, ``settings.backbone`` (loaded once)."""
    if encoder.generative is not None:
        return encoder.generative.backbone
    device = resolve_device(settings.device)
    return load_backbone(settings.backbone, device, resolve_dtype(settings.dtype, device), settings)


def query_engine(
    client: QdrantClient,
    collection: str,
    encoder: Encoder,
    k: int = 3,
    max_new_tokens: int = 256,
    llm: BackboneLLM | None = None,
    filters: SearchFilter | None = None,
    mode: Mode = "auto",
    safety: SafetyMode = "route",
    *,
    settings: Settings,
) -> CitationQueryEngine:
    """Retrieve k chunks the caller may read (``filters``), answer with the backbone, citing sources as [n]
    (``llm``: default ``backbone_for(encoder, settings)``)."""
    llm = llm or BackboneLLM(backbone_for(encoder, settings), max_new_tokens=max_new_tokens)
    return CitationQueryEngine.from_args(
        None,  # no index: the retriever is gensearch's own read path
        llm=llm,
        retriever=retriever(client, collection, encoder, k, filters, mode, safety),
        citation_qa_template=QA_PROMPT,
        citation_refine_template=REFINE_PROMPT,
    )


def ask(
    client: QdrantClient,
    encoder: Encoder,
    collection: str,
    question: str,
    k: int = 3,
    max_new_tokens: int = 256,
    filters: SearchFilter | None = None,
    llm: BackboneLLM | None = None,
    mode: Mode = "auto",
    safety: SafetyMode = "route",
    *,
    settings: Settings,
) -> Answer:
    """Answer ``question`` from the top-k chunks the caller may read (``filters``), with numbered citations
    (``llm``: default the encoder's backbone, see ``backbone_for``)."""
    question = check_query(encoder, question, k)
    response = query_engine(client, collection, encoder, k, max_new_tokens, llm=llm, filters=filters, mode=mode, safety=safety, settings=settings).query(question)
    answer = str(response).strip()
    cited = {int(n) for n in _CITE.findall(answer)}
    citations = []
    citations = [Citation(**asdict(hit_of(source)), n=n, cited=n in cited) for n, source in enumerate(response.source_nodes, start=1)]
    return Answer(question, answer, citations)
