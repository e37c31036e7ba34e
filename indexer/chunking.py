"""Chunking with LlamaIndex node parsers, sized in tokens of the encoder's own tokenizer.

``MarkdownNodeParser`` cuts each document at its ``#`` headings (every format is normalised to
those by ``formats``), ``SentenceSplitter`` then cuts long sections into ``chunk_size``-token
pieces (counting the title/section header the encoder also sees). Each chunk gets a point id
derived from its content, so the same chunk always maps to the same Qdrant point.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
from llama_index.core.schema import BaseNode, MetadataMode, TextNode

from .corpus import SourceDoc

Tokenize = Callable[[str], list]

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gensearch/chunks")
EMBED_KEYS = ("title", "section")  # the only metadata the encoder (and the RAG LLM) sees
SECTION_SEP = " > "


def chunk_id(source: str, embed_text: str) -> str:
    """Deterministic point id: uuid5 of the source path and the exact text that gets embedded."""
    return str(uuid.uuid5(NAMESPACE, f"{source}\n{embed_text}"))


def embed_text(node: BaseNode) -> str:
    """What the encoder reads for a chunk: ``title: ...`` / ``section: ...`` lines, blank line, text."""
    return node.get_content(metadata_mode=MetadataMode.EMBED)


def to_document(doc: SourceDoc, corpus: str) -> Document:
    """A LlamaIndex Document whose metadata only shows title and section to the encoder / LLM."""
    hidden = ["source", "corpus", "format", "header_path", "chunk_index"]
    return Document(
        text=doc.text,
        metadata={"source": doc.source, "corpus": corpus, "title": doc.title, "format": doc.format},
        excluded_embed_metadata_keys=hidden,
        excluded_llm_metadata_keys=hidden,
    )


def section_of(node: BaseNode, title: str) -> str:
    """Breadcrumb of a Markdown section node (parents + its own heading), without the document title."""
    parts = [p for p in node.metadata.get("header_path", "").split("/") if p]
    first = node.get_content(metadata_mode=MetadataMode.NONE).lstrip().split("\n", 1)[0]
    if first.startswith("#"):
        parts.append(first.lstrip("#").strip())
    if parts and parts[0] == title:
        parts = parts[1:]
    return SECTION_SEP.join(parts)


def has_body(node: BaseNode) -> bool:
    """False for sections that hold nothing but their heading line(s)."""
    lines = node.get_content(metadata_mode=MetadataMode.NONE).strip().splitlines()
    return any(line.strip() and not line.startswith("#") for line in lines)


def sections(docs: Iterable[SourceDoc], corpus: str) -> list[BaseNode]:
    """One node per Markdown section (plain text and PDF files stay whole), with ``section`` metadata."""
    parser = MarkdownNodeParser(include_prev_next_rel=False)
    nodes: list[BaseNode] = []
    for doc in docs:
        document = to_document(doc, corpus)
        parts = parser.get_nodes_from_documents([document]) if doc.format in ("markdown", "rst", "html") else [document]
        for part in parts:
            if not has_body(part):
                continue
            part.metadata["section"] = section_of(part, doc.title) if part is not document else ""
            part.metadata.pop("header_path", None)
            nodes.append(part)
    return nodes


def chunk_documents(
    docs: Iterable[SourceDoc],
    corpus: str,
    tokenize: Tokenize,
    chunk_size: int = 256,
    chunk_overlap: int = 32,
    show_progress: bool = False,
) -> list[TextNode]:
    """Chunks of every document, in order, with content-derived ids and metadata
    ``source, corpus, title, section, format, chunk_index``; exact duplicates within a file are dropped."""
    splitter = SentenceSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenize, include_prev_next_rel=False
    )
    chunks: list[TextNode] = []
    seen: set[str] = set()
    per_source: dict[str, int] = {}
    for node in splitter.get_nodes_from_documents(sections(docs, corpus), show_progress=show_progress):
        if not node.get_content(metadata_mode=MetadataMode.NONE).strip():
            continue
        source = node.metadata["source"]
        node.id_ = chunk_id(source, embed_text(node))
        if node.id_ in seen:
            continue
        seen.add(node.id_)
        node.metadata["chunk_index"] = per_source.get(source, 0)
        per_source[source] = node.metadata["chunk_index"] + 1
        node.relationships = {}
        chunks.append(node)
    return chunks
