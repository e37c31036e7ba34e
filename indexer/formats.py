"""Turn one file's bytes into plain text with Markdown-style ``#`` headings (pure functions).

Every supported format is normalised to the same shape so one LlamaIndex parser
(``MarkdownNodeParser``) can find the sections: HTML headings (``<h1>``..``<h6>``) and reST
section titles (underlined / overlined lines) become ``#`` lines; markup is dropped. Office documents
and mail (Word, PowerPoint, Excel, OpenDocument, .eml) are read by ``indexer.office``.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass

from bs4 import BeautifulSoup

# Suffix -> format. ``.rst.txt`` (Sphinx sources, e.g. the Python docs) is reST, not plain text.
FORMATS: dict[str, str] = {
    ".rst.txt": "rst",
    ".rst": "rst",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",  # Office and mail: indexer.office
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".odt": "odt",
    ".ods": "ods",
    ".odp": "odp",
    ".eml": "eml",
}
OFFICE = frozenset({"docx", "pptx", "xlsx", "odt", "ods", "odp", "eml"})  # read by indexer.office
CONTAINERS = frozenset({"pdf", "docx", "pptx", "xlsx", "odt", "ods", "odp"})  # binary by design: no text check
SECTIONED = frozenset({"markdown", "rst", "html", *OFFICE})  # formats whose "#" lines are real headings (chunked by section)


@dataclass(frozen=True)
class Extracted:
    """Text ready for chunking, its format and the title found inside the file (if any)."""

    text: str
    format: str
    title: str | None = None


def format_of(name: str) -> str | None:
    """The format for a file name (longest matching suffix wins), or None if unsupported."""
    lower = name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if lower.endswith(suffix):
            return FORMATS[suffix]
    return None


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # UTF-32 before UTF-16: FF FE 00 00 starts both


def bom_encoding(data: bytes) -> str | None:
    """The encoding a byte-order mark announces, or None."""
    return next((encoding for bom, encoding in _BOMS if data.startswith(bom)), None)


CP1252_SLACK = 0.15
_NO_BOM_UNICODE = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le", "utf_7"]  # need a BOM here


def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding): the byte-order mark's encoding, else UTF-8, else the legacy code page charset-normalizer
    finds least chaotic. Windows-1252, the most common legacy code page, wins when it is nearly as clean (within
    ``CP1252_SLACK`` chaos: short Western texts are often guessed as cp1257) or when the guess has no language
    evidence at all ("caf\\xe9"). UnicodeDecodeError when nothing fits."""
    encoding = bom_encoding(data)
    if encoding:
        return data.decode(encoding), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        matches = from_bytes(data, cp_exclusion=_NO_BOM_UNICODE)
        best = matches.best()
        if best is None:
            raise
        near = any(m.encoding == "cp1252" and m.chaos <= best.chaos + CP1252_SLACK for m in matches)
        if near or (best.coherence == 0.0 and len(matches) > 1):  # many equally clean guesses, no language evidence
            try:
                return data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError:
                pass
        return str(best), best.encoding


def extract(data: bytes, fmt: str) -> Extracted:
    """Text of a file in ``fmt`` (legacy encodings decoded, ``decode_text``); raises UnicodeDecodeError / ValueError
    for unusable content."""
    if fmt == "pdf":
        return pdf_to_text(data)
    if fmt in OFFICE:
        from .office import extract_office

        return extract_office(data, fmt)
    text, _ = decode_text(data)
    if fmt == "html":
        return html_to_markdown(text)
    if fmt == "rst":
        return rst_to_markdown(text)
    if fmt == "markdown":
        return Extracted(text, fmt, first_heading(text))
    return Extracted(text, fmt)


# ----------------------------------------------------------------------------- Markdown

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def first_heading(markdown: str) -> str | None:
    """Text of the first ``#`` heading of the highest level present."""
    found = _HEADING.findall(markdown)
    if not found:
        return None
    top = min(len(hashes) for hashes, _ in found)
    return next(text for hashes, text in found if len(hashes) == top)


# ----------------------------------------------------------------------------- HTML

_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "head"]
_BLOCK_TAGS = ["p", "div", "pre", "li", "tr", "br", "table", "ul", "ol", "dl", "dt", "dd", "blockquote", "section", "article"]
_MARK = "\x00"  # marks the headings we write, so a '#' line in page text is not taken for one


def _escape_hashes(text: str) -> str:
    """Indent lines that start with '#' so the Markdown parser does not read them as headings."""
    return re.sub(r"^#", " #", text, flags=re.MULTILINE)


def html_to_markdown(html: str) -> Extracted:
    """Visible text of an HTML page, headings as ``#`` lines, title from ``<title>`` or the first ``<h1>``."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else None
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for block in soup.find_all(_BLOCK_TAGS):  # keep block elements on their own lines
        block.insert_before("\n")
        block.insert_after("\n")
    for heading in soup.find_all(re.compile(r"^h[1-6]$")):
        level = int(heading.name[1])
        text = " ".join(heading.get_text(" ", strip=True).split())
        heading.replace_with(f"\n\n{_MARK}{'#' * level} {text}\n\n" if text else "")
    text = _escape_hashes(soup.get_text()).replace(_MARK, "")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return Extracted(text, "html", title or first_heading(text))


# ----------------------------------------------------------------------------- reST

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")  # a line of one repeated punctuation character
_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def clean_rst_inline(text: str) -> str:
    """``:func:`open``` -> ``open``, ````code```` -> ``code`` (for titles shown to people)."""
    return _ROLE.sub(r"\1", text).replace("``", "").strip()


def rst_to_markdown(text: str) -> Extracted:
    """reST with section titles rewritten as ``#`` headings (levels in order of first appearance)."""
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    out: list[str] = []
    title = None
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        after = lines[i + 2] if i + 2 < len(lines) else ""
        if _ADORNMENT.match(line) and nxt.strip() and _ADORNMENT.match(after) and after[0] == line[0]:
            style, heading, i = (line[0], True), nxt.strip(), i + 3
        elif line.strip() and not line[0].isspace() and not _ADORNMENT.match(line) and _ADORNMENT.match(nxt) and len(nxt.rstrip()) >= len(line.rstrip()):
            style, heading, i = (nxt[0], False), line.strip(), i + 2
        else:
            out.append(_escape_hashes(line))
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        heading = clean_rst_inline(heading)
        title = title or heading
        out.append(f"{'#' * min(styles.index(style) + 1, 6)} {heading}")
    return Extracted("\n".join(out), "rst", title)


# ----------------------------------------------------------------------------- PDF


def pdf_to_text(data: bytes) -> Extracted:
    """Text of every page (pypdf), pages separated by blank lines; title from the PDF metadata."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"PDF could not be read ({exc})") from exc
    return Extracted("\n\n".join(p.strip() for p in pages if p.strip()), "pdf", title or None)
