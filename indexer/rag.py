"""LlamaIndex retrieval and RAG over a gensearch collection, fully offline.

``retriever()`` wraps a collection (built by ``gensearch index``) as a LlamaIndex retriever;
``query_engine()`` adds LlamaIndex's ``CitationQueryEngine`` answering with the frozen backbone on the
fastest generation engine for the machine (``llm_for``: CTranslate2 on CPU, 4.7x transformers where measured;
``GENSEARCH_GENERATION_ENGINE``); ``ask()`` returns the answer and its numbered sources, ``ask_stream()`` the
same while the answer is being written.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from llama_index.core import PromptTemplate
from llama_index.core.query_engine import CitationQueryEngine
from llama_index.core.retrievers import BaseRetriever
from qdrant_client import QdrantClient

from encoder import Encoder
from encoder.backbone import Backbone, load_backbone
from encoder.device import resolve_device, resolve_dtype
from encoder.generation import Engine, load_engine
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
    client: QdrantClient, collection: str, encoder: Encoder, k: int = 5, filters: SearchFilter | None = None, mode: Mode = "dense",
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


_ENGINES: dict[tuple[int, str], Engine] = {}  # one engine per loaded backbone and engine name, for the process
_ENGINES_LOCK = threading.Lock()  # app sessions ask concurrently: one engine is made, not one each


def llm_for(encoder: Encoder, settings: Settings, max_new_tokens: int = 256) -> BackboneLLM:
    """The RAG LLM: the encoder's backbone (``backbone_for``) on ``settings.generation_engine`` (``auto``: the fastest
    for the machine), the engine made once per process (CTranslate2 converts the weights once, cached on disk)."""
    backbone = backbone_for(encoder, settings)
    key = (id(backbone.model), settings.generation_engine)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = load_engine(settings.generation_engine, backbone, settings=settings, batch_size=1)
    return BackboneLLM(backbone, engine=_ENGINES[key], max_new_tokens=max_new_tokens)


def query_engine(
    client: QdrantClient,
    collection: str,
    encoder: Encoder,
    k: int = 3,
    max_new_tokens: int = 256,
    llm: BackboneLLM | None = None,
    filters: SearchFilter | None = None,
    mode: Mode = "dense",
    safety: SafetyMode = "route",
    *,
    settings: Settings,
    streaming: bool = False,
) -> CitationQueryEngine:
    """Retrieve k chunks the caller may read (``filters``), answer with the backbone, citing sources as [n]
    (``llm``: default ``llm_for(encoder, settings)``; ``streaming``: the response yields text as it is written)."""
    llm = llm or llm_for(encoder, settings, max_new_tokens)
    return CitationQueryEngine.from_args(
        None,  # no index: the retriever is gensearch's own read path
        llm=llm,
        retriever=retriever(client, collection, encoder, k, filters, mode, safety),
        citation_qa_template=QA_PROMPT,
        citation_refine_template=REFINE_PROMPT,
        streaming=streaming,
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
    mode: Mode = "dense",
    safety: SafetyMode = "route",
    *,
    settings: Settings,
) -> Answer:
    """Answer ``question`` from the top-k chunks the caller may read (``filters``), with numbered citations
    (``llm``: default ``llm_for``): ``ask_stream``, read to the end."""
    return ask_stream(client, encoder, collection, question, k, max_new_tokens, filters, llm, mode, safety, settings=settings).answer()


def answer_of(question: str, text: str, sources: list) -> Answer:
    """The Answer: the text, and each source numbered as the LLM saw it, ``cited`` if the text refers to it."""
    text = text.strip()
    cited = {int(n) for n in _CITE.findall(text)}
    return Answer(question, text, [Citation(**asdict(hit_of(source)), n=n, cited=n in cited) for n, source in enumerate(sources, start=1)])


@dataclass
class AnswerStream:
    """An answer being written: iterate it for the text as the LLM writes it, then ``answer()`` for the whole
    ``Answer`` with citations. ``sources`` (the retrieved chunks, numbered from 1) are known before the first word."""

    question: str
    sources: list
    pieces: Iterator[str]
    _written: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        for piece in self.pieces:
            self._written.append(piece)
            yield piece

    def answer(self) -> Answer:
        for _ in self:  # whatever was not read yet
            pass
        return answer_of(self.question, "".join(self._written), self.sources)


def ask_stream(
    client: QdrantClient,
    encoder: Encoder,
    collection: str,
    question: str,
    k: int = 3,
    max_new_tokens: int = 256,
    filters: SearchFilter | None = None,
    llm: BackboneLLM | None = None,
    mode: Mode = "dense",
    safety: SafetyMode = "route",
    *,
    settings: Settings,
) -> AnswerStream:
    """``ask``, streamed: retrieval happens now, the answer is written while the stream is read."""
    question = check_query(encoder, question, k)
    engine = query_engine(client, collection, encoder, k, max_new_tokens, llm=llm, filters=filters, mode=mode, safety=safety, settings=settings, streaming=True)
    response = engine.query(question)
    pieces = response.response_gen if hasattr(response, "response_gen") else iter([str(response)])  # nothing retrieved: no stream
    return AnswerStream(question, list(response.source_nodes), iter(pieces))
