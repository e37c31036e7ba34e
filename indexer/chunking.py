"""Chunking with LlamaIndex node parsers, sized in tokens of the encoder's own tokenizer.

``MarkdownNodeParser`` cuts each document at its ``#`` headings (every format is normalised to
those by ``formats``), sections longer than ``MAX_BLOCK_CHARS`` are cut into blocks at paragraph, line or
word boundaries (``blocks``: the sentence splitter's work, and NLTK's regex time limit, then stay bounded
whatever the file's size), and ``SentenceSplitter`` cuts each into ``chunk_size``-token pieces (counting the
title/section header the encoder also sees). Each chunk gets a point id derived from its content, so the
same chunk always maps to the same Qdrant point. A document that fails to chunk is reported, never fatal.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator

from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from tqdm.auto import tqdm

from .corpus import Skipped, SourceDoc
from .formats import SECTIONED

log = logging.getLogger(__name__)

Tokenize = Callable[[str], list]

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gensearch/chunks")
EMBED_KEYS = ("title", "section")  # the only metadata the encoder (and the RAG LLM) sees
SECTION_SEP = " > "
MAX_BLOCK_CHARS = 20_000  # longest text handed to the sentence splitter at once
NOT_CHUNKED = "not chunked"  # a Skipped reason: a failure this time, the file's stored chunks are kept
CHUNKER_VERSION = 3  # bump when how files are read or cut changes: stored files are then read again (``known_files``)


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


def blocks(text: str, max_chars: int = MAX_BLOCK_CHARS) -> Iterator[str]:
    """``text`` in consecutive pieces of at most ``max_chars``, cut at the last paragraph break, else line
    break, else space before the limit (a hard cut only inside one very long word); joined, they are ``text``."""
    start = 0
    while len(text) - start > max_chars:
        end = start + max_chars
        cut = next((i + len(sep) for sep in ("\n\n", "\n", " ") if (i := text.rfind(sep, start + 1, end)) > start), end)
        yield text[start:cut]
        start = cut
    if start < len(text):
        yield text[start:]


def bounded(part: BaseNode) -> list[BaseNode]:
    """``part`` itself, or copies of it holding its text in ``blocks`` when it is longer than one block."""
    text = part.get_content(metadata_mode=MetadataMode.NONE)
    if len(text) <= MAX_BLOCK_CHARS:
        return [part]
    keys = dict(excluded_embed_metadata_keys=part.excluded_embed_metadata_keys, excluded_llm_metadata_keys=part.excluded_llm_metadata_keys)
    return [TextNode(text=block, metadata=dict(part.metadata), **keys) for block in blocks(text)]


def sections(docs: Iterable[SourceDoc], corpus: str) -> list[BaseNode]:
    """One node per Markdown section (plain text and PDF files stay whole; either cut into ``blocks`` when
    long), with ``section`` metadata."""
    parser = MarkdownNodeParser(include_prev_next_rel=False)
    nodes: list[BaseNode] = []
    for doc in docs:
        document = to_document(doc, corpus)
        parts = parser.get_nodes_from_documents([document]) if doc.format in SECTIONED else [document]
        for part in parts:
            if not has_body(part):
                continue
            part.metadata["section"] = section_of(part, doc.title) if part is not document else ""
            part.metadata.pop("header_path", None)
            nodes.extend(bounded(part))
    return nodes


def chunk_documents(
    docs: Iterable[SourceDoc],
    corpus: str,
    tokenize: Tokenize,
    chunk_size: int = 256,
    chunk_overlap: int = 32,
    show_progress: bool = False,
    failed: list[Skipped] | None = None,
) -> list[TextNode]:
    """Chunks of every document, in order, with content-derived ids and metadata
    ``source, corpus, title, section, format, chunk_index``; exact duplicates within a file are dropped.

    A document that cannot be chunked is left out and appended to ``failed`` (reason ``not chunked: ...``);
    without ``failed`` the error propagates."""
    splitter = SentenceSplitter(
        chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenize, include_prev_next_rel=False
    )
    docs = list(docs)
    chunks: list[TextNode] = []
    for doc in tqdm(docs, desc="chunk", unit="file", disable=not show_progress):
        try:
            nodes = splitter.get_nodes_from_documents(sections([doc], corpus))
        except Exception as exc:  # a parser bug or limit on one file must not end the run
            if failed is None:
                raise
            log.warning("could not chunk %s: %s", doc.source, exc)
            failed.append(Skipped(doc.source, f"{NOT_CHUNKED}: {type(exc).__name__}: {str(exc)[:200]}"))
            continue
        chunks.extend(numbered(nodes))
    return chunks


def numbered(nodes: list[BaseNode]) -> Iterator[BaseNode]:
    """One document's chunk nodes with content ids and ``chunk_index``; empty chunks and repeats dropped."""
    seen: set[str] = set()
    for node in nodes:
        if not node.get_content(metadata_mode=MetadataMode.NONE).strip():
            continue
        node.id_ = chunk_id(node.metadata["source"], embed_text(node))
        if node.id_ in seen:
            continue
        seen.add(node.id_)
        node.metadata["chunk_index"] = len(seen) - 1
        node.relationships = {}
        yield node
