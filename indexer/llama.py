"""Thin LlamaIndex adapters: any gensearch ``Encoder`` as a ``BaseEmbedding``, the frozen backbone as a
``CustomLLM``, and a node postprocessor that hides storage metadata from the LLM.

Both wrap objects already in memory: ``BackboneLLM`` generates with the very backbone the
LLM2Vec-Gen encoder uses (``encoder.backbone``), so RAG never loads a second copy of the LLM.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle

from encoder import Encoder
from encoder.backbone import Backbone
from encoder.generation import Engine, TransformersEngine


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
    """Greedy chat-template generation with an already loaded frozen backbone (CPU or GPU), through the
    transformers engine of ``encoder.generation`` so RAG shares the encoder's weights."""

    max_new_tokens: int = Field(default=256, description="Most tokens generated per answer.")
    context_window: int = Field(default=4096, description="Prompt + answer tokens the LLM is given.")
    system_prompt: str | None = Field(default=None, description="Optional system message.")
    _backbone: Backbone = PrivateAttr()
    _engine: Engine = PrivateAttr()

    def __init__(self, backbone: Backbone, **kwargs: Any):
        window = min(kwargs.pop("context_window", 4096), backbone.model.config.max_position_embeddings)
        super().__init__(context_window=window, **kwargs)
        self._backbone = backbone
        self._engine = TransformersEngine(backbone, batch_size=1)

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
        text = self._generate(prompt)
        yield CompletionResponse(text=text, delta=text)


class MetadataForLLM(BaseNodePostprocessor):
    """Show the LLM only some metadata keys of retrieved nodes (title, section), not paths, ids or lens words."""

    keys: tuple[str, ...] = Field(default=("title", "section"))

    @classmethod
    def class_name(cls) -> str:
        return "MetadataForLLM"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        for node in nodes:
            node.node.excluded_llm_metadata_keys = [k for k in node.node.metadata if k not in self.keys]
        return nodes
