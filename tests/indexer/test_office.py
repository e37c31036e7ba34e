"""Office documents and mail, each written here by its own library (or by hand), indexed and found by a phrase inside."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest

from indexer.corpus import load_folder
from indexer.formats import extract
from indexer.office import markdown_table


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Travel policy"
    document.add_heading("Travel policy", level=1)
    document.add_paragraph("Book trains for trips under four hours.")
    document.add_heading("Expenses", level=2)
    table = document.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "Item", (0, 1): "Limit", (1, 0): "Hotel night", (1, 1): "180 EUR"}.items():
        table.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Revenue grew by twelve percent in the northern region."
    slide.notes_slide.notes_text_frame.text = "Mention the new warehouse."
    rows = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    rows.cell(0, 0).text, rows.cell(0, 1).text, rows.cell(1, 0).text, rows.cell(1, 1).text = "Region", "Growth", "North", "12%"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Inventory"
    for row in (["Part", "Stock", "Warehouse"], ["Hydraulic pump", 14, "Rotterdam"], ["Gasket set", 230, "Lyon"]):
        sheet.append(row)
    sheet["E1"] = "=B2+B3"  # a formula: its (missing) cached value, not the formula text, is what counts
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def odt_bytes() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Onboarding"))
    document.text.addElement(P(text="New staff receive a laptop and a badge on their first day."))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def ods_bytes() -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Budget")
    for values in (["Team", "Budget"], ["Research", "40000"]):
        row = TableRow()
        for value in values:
            cell = TableCell()
            cell.addElement(P(text=value))
            row.addElement(cell)
        table.addElement(row)
    document.spreadsheet.addElement(table)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def eml_bytes() -> bytes:
    message = EmailMessage()
    message["Subject"] = "Server maintenance on Saturday"
    message["From"] = "ops@example.com"
    message["To"] = "staff@example.com"
    message.set_content("The mail server is down for maintenance between 02:00 and 04:00.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="schedule.pdf")
    return message.as_bytes()


FILES = {
    "policy.docx": (docx_bytes, "Book trains for trips under four hours", "Travel policy"),
    "results.pptx": (pptx_bytes, "Revenue grew by twelve percent", "Quarterly results"),
    "stock.xlsx": (xlsx_bytes, "| Hydraulic pump | 14 | Rotterdam |", None),
    "onboarding.odt": (odt_bytes, "receive a laptop and a badge", "Onboarding"),
    "budget.ods": (ods_bytes, "| Research | 40000 |", "Budget"),
    "maintenance.eml": (eml_bytes, "down for maintenance between 02:00 and 04:00", "Server maintenance on Saturday"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_office_format_becomes_text_with_sections_and_tables(name):
    make, phrase, title = FILES[name]
    extracted = extract(make(), Path(name).suffix.lstrip(".").replace("xlsx", "xlsx"))
    assert phrase in extracted.text
    if title:
        assert extracted.title == title


def test_word_keeps_headings_and_tables_in_place():
    text = extract(docx_bytes(), "docx").text
    assert text.index("# Travel policy") < text.index("## Expenses") < text.index("| Hotel night | 180 EUR |")


def test_slides_are_sections_with_their_notes_and_tables():
    text = extract(pptx_bytes(), "pptx").text
    assert "# Slide 1: Quarterly results" in text and "Notes: Mention the new warehouse." in text and "| North | 12% |" in text


def test_mail_has_its_headers_and_names_its_attachments():
    text = extract(eml_bytes(), "eml").text
    assert text.startswith("# Server maintenance on Saturday") and "From: ops@example.com" in text and "Attachments: schedule.pdf" in text


def test_markdown_tables_drop_empty_rows_and_columns_and_escape_pipes():
    assert markdown_table([["a", "", "b|c"], ["", "", ""], ["1", "", "2"]]) == "| a | b\\|c |\n|---|---|\n| 1 | 2 |"


def test_a_damaged_office_file_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "fine.docx").write_bytes(docx_bytes())
    corpus = load_folder(tmp_path)
    assert [Path(d.source).name for d in corpus.docs] == ["fine.docx"]
    assert corpus.skipped[0].reason.startswith("unreadable: docx file could not be read")


def test_every_format_is_indexed_and_found_through_the_cli(tmp_path, monkeypatch):
    """Issue must-show: each new format indexed and found by a search for a phrase inside it, through the CLI."""
    import json

    from typer.testing import CliRunner

    from app.cli import cli
    from encoder import get_settings

    docs = tmp_path / "drive"
    docs.mkdir()
    for name, (make, _, _) in FILES.items():
        (docs / name).write_bytes(make())
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(tmp_path / "qdrant"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        indexed = runner.invoke(cli, ["index", str(docs), "-c", "drive", "-e", "baseline"])
        assert indexed.exit_code == 0 and f"{len(FILES)} files loaded, 0 skipped" in indexed.output, indexed.output
        for name, query in {"policy.docx": "book trains for short trips", "results.pptx": "revenue growth in the north",
                            "stock.xlsx": "hydraulic pump stock", "onboarding.odt": "laptop and badge for new staff",
                            "budget.ods": "research team budget", "maintenance.eml": "mail server maintenance"}.items():
            found = runner.invoke(cli, ["search", query, "-c", "drive", "-k", "1", "--json", "--mode", "hybrid"])
            assert Path(json.loads(found.stdout)["hits"][0]["source"]).name == name, (query, found.stdout)
    finally:
        get_settings.cache_clear()


def test_office_headings_are_sections_for_the_chunker(baseline_encoder):
    from indexer.chunking import chunk_documents
    from indexer.corpus import SourceDoc
    from indexer.embedding import tokenizer_of

    extracted = extract(docx_bytes(), "docx")
    doc = SourceDoc("/x/policy.docx", extracted.text, extracted.format, extracted.title)
    chunks = chunk_documents([doc], "/x", tokenizer_of(baseline_encoder), 64, 0)
    assert {c.metadata["section"] for c in chunks} >= {"Expenses"}
