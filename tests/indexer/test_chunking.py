"""Chunking: LlamaIndex parsers, token-sized chunks, section metadata, content-derived ids."""

from __future__ import annotations

from indexer.chunking import blocks, chunk_documents, embed_text
from indexer.corpus import SourceDoc, load_folder
from indexer.embedding import tokenizer_of


def test_chunks_fit_the_token_budget_and_keep_sections(docs_dir, baseline_encoder):
    tokenize = tokenizer_of(baseline_encoder)
    corpus = load_folder(docs_dir)
    chunks = chunk_documents(corpus.docs, corpus.root, tokenize, chunk_size=48, chunk_overlap=8)
    assert all(len(tokenize(embed_text(c))) <= 48 for c in chunks)
    by_section = {(c.metadata["title"], c.metadata["section"]) for c in chunks}
    assert ("Python lists", "Reversing") in by_section and ("Python lists", "Sorting") in by_section
    assert ("Cats", "Feeding cats") in by_section
    sorting = next(c for c in chunks if c.metadata["section"] == "Sorting")
    assert embed_text(sorting).startswith("title: Python lists\nsection: Sorting\n\n")
    assert "source" not in embed_text(sorting)  # paths are payload, not embedded text
    # chunk_index counts per file from 0
    for source in {c.metadata["source"] for c in chunks}:
        assert [c.metadata["chunk_index"] for c in chunks if c.metadata["source"] == source] == list(range(sum(c.metadata["source"] == source for c in chunks)))


def test_long_sections_are_split_and_heading_only_sections_dropped(baseline_encoder):
    tokenize = tokenizer_of(baseline_encoder)
    body = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    doc = SourceDoc("/x/long.md", f"# Doc\n\n## Empty parent\n\n### Child\n\n{body}\n", "markdown", "Doc")
    chunks = chunk_documents([doc], "/x", tokenize, chunk_size=64, chunk_overlap=8)
    assert len(chunks) > 3
    assert all(c.metadata["section"] == "Empty parent > Child" for c in chunks)
    assert all(c.text.strip() != "## Empty parent" for c in chunks)


def test_ids_are_deterministic_and_content_derived(docs_dir, baseline_encoder):
    tokenize = tokenizer_of(baseline_encoder)
    corpus = load_folder(docs_dir)
    first = [c.id_ for c in chunk_documents(corpus.docs, corpus.root, tokenize, 48, 8)]
    second = [c.id_ for c in chunk_documents(corpus.docs, corpus.root, tokenize, 48, 8)]
    assert first == second and len(set(first)) == len(first)
    moved = [SourceDoc("/elsewhere.md", d.text, d.format, d.title) for d in corpus.docs[:1]]
    assert not {c.id_ for c in chunk_documents(moved, "/", tokenize, 48, 8)} & set(first)


def test_duplicate_chunks_in_one_file_are_stored_once(baseline_encoder):
    tokenize = tokenizer_of(baseline_encoder)
    para = "The same paragraph, with enough words in it to fill one small chunk of text on its own."
    doc = SourceDoc("/x/dup.txt", f"{para}\n\n\n{para}\n", "text", "dup")
    chunks = chunk_documents([doc], "/x", tokenize, chunk_size=32, chunk_overlap=0)
    assert [c.text for c in chunks] == [para]


def test_blocks_cut_long_text_at_paragraphs_lines_or_words_and_lose_nothing():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 30 for i in range(50))
    pieces = list(blocks(text, max_chars=500))
    assert "".join(pieces) == text and all(len(p) <= 500 for p in pieces)
    assert all(p.endswith("\n\n") for p in pieces[:-1])  # cut after a paragraph break
    one_line = "word " * 400
    assert all(p.endswith(" ") for p in list(blocks(one_line, max_chars=300))[:-1])
    assert list(blocks("x" * 1000, max_chars=300)) == ["x" * 300] * 3 + ["x" * 100]  # one huge word: hard cuts
    assert list(blocks("short")) == ["short"]


def test_a_huge_single_paragraph_file_chunks_in_bounded_pieces(baseline_encoder):
    """Issue row: a very large text file killed the run (NLTK's regex time limit over the whole section)."""
    tokenize = tokenizer_of(baseline_encoder)
    text = " ".join(f"Line {i} of a log file that has no paragraph breaks at all, status ok." for i in range(4000))
    chunks = chunk_documents([SourceDoc("/x/huge.txt", text, "text", "huge")], "/x", tokenize, chunk_size=256, chunk_overlap=0)
    assert len(chunks) > 100 and all(len(tokenize(embed_text(c))) <= 256 for c in chunks)
    assert "Line 0 of" in chunks[0].text and "Line 3999 of" in chunks[-1].text


def test_a_document_that_fails_to_chunk_is_reported_and_the_others_are_chunked(baseline_encoder):
    real = tokenizer_of(baseline_encoder)

    def tokenize(text: str) -> list:
        if "unparseable" in text:
            raise RuntimeError("tokenizer gave up")
        return real(text)

    docs = [SourceDoc("/x/bad.txt", "An unparseable document.", "text", "bad"), SourceDoc("/x/good.txt", "A fine document about cats.", "text", "good")]
    failed = []
    chunks = chunk_documents(docs, "/x", tokenize, 64, 0, failed=failed)
    assert [c.metadata["source"] for c in chunks] == ["/x/good.txt"]
    assert [(f.path, f.reason) for f in failed] == [("/x/bad.txt", "not chunked: RuntimeError: tokenizer gave up")]
