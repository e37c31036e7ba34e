"""Format extraction: markup dropped, headings kept as '#' lines, titles found, PDF via pypdf."""

from __future__ import annotations

import io

import pytest

from indexer.formats import clean_rst_inline, decode_text, extract, first_heading, format_of, html_to_markdown, rst_to_markdown


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.md", "markdown"), ("b.rst.txt", "rst"), ("c.txt", "text"), ("d.HTML", "html"), ("e.pdf", "pdf"), ("f.png", None), ("Makefile", None)],
)
def test_format_of(name, fmt):
    assert format_of(name) == fmt


def test_html_text_without_markup():
    html = (
        "<html><head><title>Page title</title><style>.x{color:red}</style></head><body>"
        "<h1>Main</h1><p>Hello <b>bold</b> world.</p><h2>Sub part</h2><pre># a comment\nx = 1</pre>"
        "<script>alert('hi')</script></body></html>"
    )
    out = html_to_markdown(html)
    assert out.title == "Page title"
    assert "# Main" in out.text.splitlines() and "## Sub part" in out.text.splitlines()
    assert "Hello bold world." in out.text
    assert "<" not in out.text and "alert" not in out.text and "color:red" not in out.text
    assert "# a comment" not in out.text.splitlines()  # page text never becomes a heading


def test_rst_titles_become_headings_by_first_appearance():
    rst = "*****\n Top\n*****\n\nIntro.\n\nSection :func:`open`\n====================\n\nBody.\n\nSub\n---\n\nMore.\n\nNext\n====\n\nEnd.\n"
    out = rst_to_markdown(rst)
    lines = out.text.splitlines()
    assert out.title == "Top"
    assert "# Top" in lines and "## Section open" in lines and "### Sub" in lines and "## Next" in lines
    assert "=" * 20 not in out.text


def test_rst_short_underline_is_not_a_title():
    out = rst_to_markdown("A long line of text\n---\n")
    assert not any(line.startswith("#") for line in out.text.splitlines())


def test_clean_rst_inline():
    assert clean_rst_inline(":mod:`os.path` --- ``join``") == "os.path --- join"
    assert clean_rst_inline(":ref:`the guide <guide-label>`") == "the guide"


def test_markdown_title_is_top_heading():
    assert first_heading("## b\n# a\n") == "a"
    assert first_heading("no heading") is None


@pytest.mark.parametrize(("text", "encoding", "found"), [
    ("caf\u00e9", "cp1252", "cp1252"),  # too short to tell: Windows-1252, the common case
    ("Le café crème coûte 3 € à Zürich; naïve résumé, déjà vu. " * 4, "cp1252", "cp1252"),
    ("Größe und Maße, Übermut tut selten gut.", "latin-1", "cp1252"),  # the same letters in cp1252
    ("Привет, как дела? Это тестовый текст на русском языке.", "cp1251", "cp1251"),
    ("Zażółć gęślą jaźń, to jest polski tekst.", "cp1250", "cp1250"),
    ("日本語のテキストです。これはテストです。", "shift_jis", "cp932"),
    ("Notes: café", "utf-16", "utf-16"),  # by its byte-order mark
])
def test_legacy_encodings_are_decoded(text, encoding, found):
    assert decode_text(text.encode(encoding)) == (text, found)
    assert extract(text.encode(encoding), "text").text == text


def _pdf_with_text(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica (built with pypdf's object model)."""
    from pypdf import PdfWriter
    from pypdf.generic import ContentStream, DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=612, height=792)
    font = DictionaryObject(
        {NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"), NameObject("/BaseFont"): NameObject("/Helvetica")}
    )
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(ContentStream(stream, writer))
    writer.add_metadata({"/Title": "Pdf title"})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_text_and_title():
    out = extract(_pdf_with_text("Hello from a PDF"), "pdf")
    assert "Hello from a PDF" in out.text
    assert out.title == "Pdf title"


def test_broken_pdf_raises_value_error():
    with pytest.raises(ValueError):
        extract(b"%PDF-1.4 garbage", "pdf")
