"""Office documents and e-mail as text with ``#`` headings (pure functions: bytes in, ``Extracted`` out).

A team drive is mostly Word, PowerPoint, Excel, OpenDocument and mail. Each is read by the well-kept library for
its format and normalised to the shape every other format has (``formats``): headings become ``#`` lines so the
chunker finds sections, tables become Markdown tables so a row keeps its header's meaning.

- Word (``.docx``, python-docx): paragraphs in order, Heading/Title styles as ``#``..``######``, tables in place.
- PowerPoint (``.pptx``, python-pptx): one ``#`` section per slide (its title), then its text frames, tables and notes.
- Excel (``.xlsx``, openpyxl): one ``#`` section per sheet, its used rows as a Markdown table (values, not formulas).
- OpenDocument (``.odt`` / ``.ods`` / ``.odp``, odfpy): headings, paragraphs and tables as above.
- Mail (``.eml``, the standard library): subject as the title, From / To / Date lines, the plain-text body (or
  the HTML one as text), attachments named. Outlook's ``.msg`` is not read (no library here writes one to test
  with): save such mail as ``.eml``.
"""

from __future__ import annotations

import io
import re
from email import policy
from email.parser import BytesParser

from .formats import Extracted, html_to_markdown

MAX_SHEET_ROWS = 20_000  # rows read per spreadsheet sheet (a log dumped into Excel stays bounded)


def extract_office(data: bytes, fmt: str) -> Extracted:
    """Text of an Office / OpenDocument / mail file; ValueError (naming the format) if the file cannot be read."""
    readers = {"docx": docx_to_markdown, "pptx": pptx_to_markdown, "xlsx": xlsx_to_markdown, "odt": odf_to_markdown,
               "ods": odf_to_markdown, "odp": odf_to_markdown, "eml": eml_to_text}
    try:
        return readers[fmt](data)
    except ValueError:
        raise
    except Exception as exc:  # a damaged zip, XML or OLE container: each library raises its own kind
        raise ValueError(f"{fmt} file could not be read ({type(exc).__name__}: {exc})") from exc


def markdown_table(rows: list[list[str]]) -> str:
    """Rows of cell texts as a Markdown table, the first row as its header; empty rows and columns dropped."""
    rows = [[" ".join(str(c).split()).replace("|", "\\|") for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    keep = [j for j in range(width) if any(row[j] for row in rows)]
    rows = [[row[j] for j in keep] for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _heading(level: int, text: str) -> str:
    return f"{'#' * max(1, min(level, 6))} {' '.join(text.split())}"


def _no_hash(text: str) -> str:
    """A line of body text that starts with '#' is indented so the chunker does not take it for a heading."""
    return re.sub(r"^#", " #", text, flags=re.MULTILINE)


def _title(blocks: list[str]) -> str | None:
    return next((b.lstrip("#").strip() for b in blocks if b.startswith("#")), None)


# ----------------------------------------------------------------------------- Word


def _heading_level(style_name: str) -> int | None:
    """1 for "Title" / "Heading 1", n for "Heading n"; None for body styles."""
    if style_name == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style_name or "")
    return int(match.group(1)) if match else None


def docx_to_markdown(data: bytes) -> Extracted:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            level = _heading_level(item.style.name if item.style is not None else "")
            blocks.append(_heading(level, text) if level else _no_hash(text))
        elif isinstance(item, Table):
            blocks.append(markdown_table([[cell.text for cell in row.cells] for row in item.rows]))
    title = document.core_properties.title or _title(blocks)
    return Extracted("\n\n".join(b for b in blocks if b), "docx", title or None)


# ----------------------------------------------------------------------------- PowerPoint


def pptx_to_markdown(data: bytes) -> Extracted:
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    blocks: list[str] = []
    for n, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else ""
        blocks.append(_heading(1, f"Slide {n}: {title}" if title else f"Slide {n}"))
        for shape in slide.shapes:
            if shape is title_shape:
                continue
            if shape.has_text_frame and shape.text_frame.text.strip():
                blocks.append(_no_hash(shape.text_frame.text.strip()))
            elif getattr(shape, "has_table", False) and shape.has_table:
                blocks.append(markdown_table([[cell.text for cell in row.cells] for row in shape.table.rows]))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame.text.strip():
            blocks.append("Notes: " + _no_hash(slide.notes_slide.notes_text_frame.text.strip()))
    title = deck.core_properties.title or next((b.split(": ", 1)[1] for b in blocks if b.startswith("# Slide") and ": " in b), None)
    return Extracted("\n\n".join(b for b in blocks if b), "pptx", title or None)


# ----------------------------------------------------------------------------- Excel


def xlsx_to_markdown(data: bytes) -> Extracted:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    blocks: list[str] = []
    try:
        for sheet in book.worksheets:
            rows = []
            for i, row in enumerate(sheet.iter_rows(values_only=True)):
                if i >= MAX_SHEET_ROWS:
                    break
                rows.append(["" if v is None else str(v) for v in row])
            table = markdown_table(rows)
            if table:
                blocks += [_heading(1, sheet.title), table]
    finally:
        book.close()
    return Extracted("\n\n".join(blocks), "xlsx", book.properties.title or None)


# ----------------------------------------------------------------------------- OpenDocument


def odf_to_markdown(data: bytes) -> Extracted:
    """Text documents, spreadsheets and presentations in ODF: headings, paragraphs, tables, pages (odfpy)."""
    from odf import teletype
    from odf.namespaces import DRAWNS, TABLENS, TEXTNS
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    blocks: list[str] = []

    def walk(node) -> None:
        for child in node.childNodes:
            qname = getattr(child, "qname", None)
            if qname == (TEXTNS, "h"):
                level = int(child.getAttribute("outlinelevel") or 1)
                text = teletype.extractText(child).strip()
                if text:
                    blocks.append(_heading(level, text))
            elif qname == (TEXTNS, "p"):
                text = teletype.extractText(child).strip()
                if text:
                    blocks.append(_no_hash(text))
            elif qname == (TABLENS, "table"):
                name = child.getAttribute("name")
                rows = [[teletype.extractText(cell).strip() for cell in row.getElementsByType(_cell_type())]
                        for row in child.getElementsByType(_row_type())][:MAX_SHEET_ROWS]
                table = markdown_table(rows)
                if table:
                    if document.mimetype.endswith("spreadsheet") and name:
                        blocks.append(_heading(1, name))
                    blocks.append(table)
            elif qname == (DRAWNS, "page"):
                blocks.append(_heading(1, child.getAttribute("name") or "Slide"))
                walk(child)
            elif getattr(child, "childNodes", None):
                walk(child)

    walk(document.body)
    meta_title = next((teletype.extractText(t) for t in document.meta.childNodes if getattr(t, "qname", (None, None))[1] == "title"), None)
    return Extracted("\n\n".join(blocks), {"text": "odt", "spreadsheet": "ods", "presentation": "odp"}.get(document.mimetype.rsplit(".", 1)[-1], "odt"),
                     meta_title or _title(blocks))


def _cell_type():
    from odf.table import TableCell

    return TableCell


def _row_type():
    from odf.table import TableRow

    return TableRow


# ----------------------------------------------------------------------------- mail


def _mail_text(subject: str | None, header: list[tuple[str, str]], body: str, attachments: list[str]) -> str:
    lines = [_heading(1, subject)] if subject else []
    lines += [f"{name}: {value}" for name, value in header if value]
    lines += ["", _no_hash(body.strip())]
    if attachments:
        lines += ["", "Attachments: " + ", ".join(attachments)]
    return "\n".join(lines).strip()


def eml_to_text(data: bytes) -> Extracted:
    message = BytesParser(policy=policy.default).parsebytes(data)
    if not message.keys():
        raise ValueError("eml file has no mail headers")
    part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if part is not None:
        content = part.get_content()
        body = html_to_markdown(content).text if part.get_content_subtype() == "html" else content
    attachments = [a.get_filename() or "(unnamed)" for a in message.iter_attachments()]
    header = [(name, str(message.get(name, ""))) for name in ("From", "To", "Cc", "Date")]
    subject = str(message.get("Subject", "")) or None
    return Extracted(_mail_text(subject, header, body, attachments), "eml", subject)
