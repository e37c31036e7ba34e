"""Thin LlamaIndex adapters: any gensearch ``Encoder`` as a ``BaseEmbedding``, the frozen backbone as a
``CustomLLM``, and gensearch's search as a ``BaseRetriever`` (one read path for CLI, app and RAG).

Both wrap objects already in memory: ``BackboneLLM`` generates with the very backbone the
LLM2Vec-Gen encoder uses (``encoder.backbone``), so RAG never loads a second copy of the LLM.
"""

from __future__ import annotations

import re
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from qdrant_client import QdrantClient

from encoder import Encoder
from encoder.backbone import Backbone
from encoder.generation import Engine, TransformersEngine

from .filters import SearchFilter
from .search import Hit, Mode, SafetyMode, search


class GensearchEmbedding(BaseEmbedding):
    """A gensearch encoder for LlamaIndex: queries get the query instruction, documents the document one."""

    _encoder: Encoder = PrivateAttr()

    def __init__(self, encoder: Encoder, embed_batch_size: int = 64, **kwargs: Any):
        super().__init__(model_name=encoder.name, embed_batch_size=embed_batch_size, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "GensearchEmbedding"

    def _encode(self, texts: list[str], task: str) -> list[list[float]]:
        return self._encoder.encode(texts, task=task, show_progress_bar=False).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query], "query")[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text], "document")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts, "document")  # one call: the encoder batches by length inside

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


class BackboneLLM(CustomLLM):
    """Greedy chat-template generation with an already loaded frozen backbone (CPU or GPU), through an engine of
    ``encoder.generation`` (default: transformers on the encoder's own weights; ``rag`` passes the fastest one
    for the machine, ``GENSEARCH_GENERATION_ENGINE``). ``stream_complete`` yields text as the engine writes it."""

    max_new_tokens: int = Field(default=256, description="Most tokens generated per answer.")
    context_window: int = Field(default=4096, description="Prompt + answer tokens the LLM is given.")
    system_prompt: str | None = Field(default=None, description="Optional system message.")
    _backbone: Backbone = PrivateAttr()
    _engine: Engine = PrivateAttr()

    def __init__(self, backbone: Backbone, engine: Engine | None = None, **kwargs: Any):
        window = min(kwargs.pop("context_window", 4096), backbone.model.config.max_position_embeddings)
        super().__init__(context_window=window, **kwargs)
        self._backbone = backbone
        self._engine = engine or TransformersEngine(backbone, batch_size=1)

    @classmethod
    def class_name(cls) -> str:
        return "BackboneLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_new_tokens,
            model_name=self._backbone.name,
            is_chat_model=False,
        )

    def _generate(self, prompt: str) -> str:
        return self._engine.answer([prompt], system=self.system_prompt, max_new_tokens=self.max_new_tokens)[0].text

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._generate(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = ""
        for delta in self._engine.stream_answer(prompt, system=self.system_prompt, max_new_tokens=self.max_new_tokens):
            text += delta
            yield CompletionResponse(text=text, delta=delta)


class GensearchRetriever(BaseRetriever):
    """A LlamaIndex retriever over gensearch's one read path (``indexer.search.search``): the same query
    checks, permission and metadata filters (inside the Qdrant query) and hits as the CLI and the app.

    Each hit becomes a ``TextNode`` with the point's id, its text (which starts with its own heading) and
    source / title / section / keywords / chunk_index as metadata hidden from the LLM and the embedder."""

    def __init__(
        self, client: QdrantClient, collection: str, encoder: Encoder, k: int = 5, filters: SearchFilter | None = None, mode: Mode = "dense",
        safety: SafetyMode = "route",
    ):
        super().__init__()
        self._client, self._collection, self._encoder, self._k, self._filters, self._mode = client, collection, encoder, k, filters, mode
        self._safety = safety

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = search(self._client, self._encoder, self._collection, query_bundle.query_str, self._k, self._filters, self._mode, self._safety).hits
        return [NodeWithScore(node=node_of(hit), score=hit.score) for hit in hits]


_SOURCE_LABEL = re.compile(r"\ASource \d+:\n")  # what CitationQueryEngine puts before each source


def node_of(hit: Hit) -> TextNode:
    """A hit as a LlamaIndex node whose metadata neither the LLM nor an embedder reads."""
    meta = {"hit_id": hit.id, "source": hit.source, "title": hit.title, "section": hit.section, "keywords": hit.keywords, "chunk_index": hit.chunk_index, "label": hit.label}
    return TextNode(id_=hit.id, text=hit.text, metadata=meta, excluded_llm_metadata_keys=list(meta), excluded_embed_metadata_keys=list(meta))


def hit_of(source: NodeWithScore) -> Hit:
    """The hit behind a node made by ``node_of``, with the node's text and score.

    A query engine may hand the LLM a copy of the node with its own text (``CitationQueryEngine`` splits
    it and prefixes "Source n:"; that label is dropped here) and a new id, so the hit id travels in metadata."""
    meta = source.node.metadata
    text = _SOURCE_LABEL.sub("", source.node.get_content(), count=1)
    return Hit(
        id=meta.get("hit_id", source.node.node_id), score=float(source.score or 0.0), source=meta.get("source", ""), title=meta.get("title", ""),
        section=meta.get("section", ""), text=text.strip(), keywords=list(meta.get("keywords") or []), chunk_index=int(meta.get("chunk_index", 0)), label=meta.get("label"),
    )
