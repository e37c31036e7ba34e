"""Corpus loading: every bad file is skipped with a reason, loops do not hang, Python docs are installed."""

from __future__ import annotations

import codecs
import os

import pytest

from encoder.settings import get_settings
from indexer.corpus import CorpusError, load_folder, python_docs_dir

from .test_formats import _pdf_with_text


def reasons(corpus) -> dict[str, str]:
    return {os.path.basename(s.path): s.reason for s in corpus.skipped}


def test_loads_supported_files(docs_dir):
    (docs_dir / "paper.pdf").write_bytes(_pdf_with_text("Quantum cats in boxes"))
    corpus = load_folder(docs_dir)
    by_name = {os.path.basename(d.source): d for d in corpus.docs}
    assert set(by_name) == {"cats.md", "lists.rst", "trains.html", "gardening.txt", "paper.pdf"}
    assert by_name["trains.html"].title == "Steam trains" and "<b>" not in by_name["trains.html"].text
    assert by_name["lists.rst"].title == "Python lists" and "## Reversing" in by_name["lists.rst"].text
    assert by_name["gardening.txt"].title == "gardening"
    assert "Quantum cats" in by_name["paper.pdf"].text
    assert corpus.skipped == []


def test_bad_files_are_skipped_with_reasons(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "ok.md").write_text("# Fine\n\nreal text\n")
    (root / "blob.txt").write_bytes(b"\x89PNG\x00\x00\x00binary")
    (root / "empty.md").write_text("   \n\n")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (root / "dangling.txt").symlink_to(root / "missing.txt")
    os.mkfifo(root / "pipe.txt")  # opening a FIFO would block: it must be skipped, not read
    (root / "folder.md").mkdir()  # a folder named like a document is just walked
    corpus = load_folder(root)
    assert [os.path.basename(d.source) for d in corpus.docs] == ["ok.md"]
    why = reasons(corpus)
    assert why["blob.txt"].startswith("binary")
    assert why["empty.md"].startswith("empty")
    assert why["image.png"].startswith("unsupported file type")
    assert why["broken.pdf"].startswith("unreadable: PDF")
    assert why["dangling.txt"].startswith("unreadable")
    assert why["pipe.txt"] == "not a regular file"
    assert "skipped" in corpus.summary() and "binary" in corpus.summary()


def test_legacy_encodings_and_utf16_are_decoded_not_skipped(tmp_path):
    root = tmp_path / "legacy"
    root.mkdir()
    text = "Le café crème coûte 3 € à Zürich; naïve résumé, déjà vu. " * 4
    (root / "cp1252.txt").write_bytes(text.encode("cp1252"))
    (root / "utf16.md").write_bytes(("# Notes\n\n" + text).encode("utf-16"))  # BOM + NUL bytes: text, not binary
    (root / "bom.txt").write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    corpus = load_folder(root)
    assert corpus.skipped == []
    by_name = {os.path.basename(d.source): d for d in corpus.docs}
    assert all("café crème coûte 3 € à Zürich" in doc.text for doc in by_name.values())
    assert by_name["utf16.md"].title == "Notes" and not by_name["bom.txt"].text.startswith("\ufeff")


def test_symlink_loops_and_repeats_do_not_hang(docs_dir):
    (docs_dir / "pets" / "loop").symlink_to(docs_dir)  # folder loop
    (docs_dir / "again").symlink_to(docs_dir / "python")  # same folder twice
    (docs_dir / "cats-link.md").symlink_to(docs_dir / "pets" / "cats.md")  # same file twice
    corpus = load_folder(docs_dir)
    assert len(corpus.docs) == 4
    assert len({d.source for d in corpus.docs}) == 4
    assert any("symlink" in s.reason for s in corpus.skipped)


def test_glob_and_limit(docs_dir):
    assert [os.path.basename(d.source) for d in load_folder(docs_dir, glob="pets/*").docs] == ["cats.md"]
    assert len(load_folder(docs_dir, limit=2).docs) == 2


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_folder(tmp_path / "nope")
    (tmp_path / "file.md").write_text("x")
    with pytest.raises(CorpusError, match="not a folder"):
        load_folder(tmp_path / "file.md")


def test_python_docs_corpus_is_installed():
    root = python_docs_dir(get_settings())
    corpus = load_folder(root, glob="faq/*")
    assert len(corpus.docs) >= 8 and not corpus.skipped
    titles = {d.title for d in corpus.docs}
    assert "Programming FAQ" in titles


def test_a_file_name_that_is_not_utf8_is_loaded_under_a_readable_name(tmp_path):
    root = tmp_path / "names"
    root.mkdir()
    (root / "ok.txt").write_text("Tomatoes need sun.")
    open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb").write(b"Notes about coffee and cream.")
    open(os.path.join(os.fsencode(root), b"bad\xff.png"), "wb").write(b"\x89PNG")
    corpus = load_folder(root)
    names = sorted(os.path.basename(d.source) for d in corpus.docs)
    assert names == ["caf\ufffd.txt", "ok.txt"]
    assert [os.path.basename(s.path) for s in corpus.skipped] == ["bad\ufffd.png"]
    assert all(d.source.encode("utf-8") and d.title.encode("utf-8") for d in corpus.docs)  # no surrogates left
