"""Pure presentation helpers: terms, highlighting, snippets, overlap, commands, report rows."""

from __future__ import annotations

from dataclasses import dataclass

from app import view


@dataclass
class H:
    source: str
    section: str
    text: str = ""


def test_query_terms_drop_stop_words_and_repeats():
    assert view.query_terms("How do I reverse a list? Reverse the LIST!") == ["reverse", "list"]
    assert view.query_terms("   ") == []


def test_highlight_marks_terms_and_their_variants_case_insensitively():
    out = view.highlight("Reversing lists: call reverse() on a List.", ["reverse", "list"])
    assert out == "<mark>Reversing</mark> <mark>lists</mark>: call <mark>reverse</mark>() on a <mark>List</mark>."


def test_highlight_escapes_html_in_text_and_terms():
    out = view.highlight("<script>alert(1)</script> use a <b>list</b>", ["list", "<b>"])
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<mark>list</mark>" in out and "<b>" not in out


def test_highlight_only_matches_word_starts():
    assert view.highlight("blisters", ["list"]) == "blisters"


def test_html_block_is_one_line_so_markdown_cannot_reinterpret_it():
    block = view.html_block("## Title\n\nUse `x` and $y$", ["title"])
    assert "\n" not in block and block.startswith('<div class="gs-text">')
    assert "<mark>Title</mark><br><br>" in block


def test_snippet_centres_on_first_match_without_cutting_words():
    text = ("filler words here " * 40) + "the needle is here " + ("more filler text " * 40)
    out = view.snippet(text, ["needle"], width=120)
    assert "needle" in out and out.startswith("…") and out.endswith("…")
    assert len(out) <= 122
    inner = out.strip("…")
    assert all(w in {"filler", "words", "here", "the", "needle", "is", "more", "text"} for w in inner.split())


def test_snippet_keeps_short_text_whole_and_starts_at_top_without_match():
    assert view.snippet("a  short\ntext") == "a short text"
    long = "word " * 200
    assert view.snippet(long, ["absent"], width=50).startswith("word")


def test_overlap_is_by_source_and_section_and_ranks_are_one_based():
    a = [H("f.md", "Intro"), H("g.md", ""), H("f.md", "Usage")]
    b = [H("f.md", "Usage"), H("h.md", ""), H("f.md", "Intro")]
    assert view.overlap(a, b) == {("f.md", "Intro"), ("f.md", "Usage")}
    assert view.rank_in(b, ("f.md", "Intro")) == 3
    assert view.rank_in(b, ("g.md", "")) is None


def test_index_commands_name_the_right_corpus_and_encoder():
    assert view.index_command("python-docs") == "gensearch index --python-docs --glob 'faq/*'"
    assert view.index_command("python-docs-baseline") == "gensearch index --python-docs --glob 'faq/*' --encoder baseline"
    assert view.index_command("safety") == "gensearch index --safety"
    assert view.index_command("safety-baseline") == "gensearch index --safety --encoder baseline"
    assert view.index_command("wiki") == "gensearch index PATH/TO/FOLDER --collection wiki"
    assert view.baseline_collection("wiki") == "wiki-baseline" == view.baseline_collection("wiki-baseline")


def test_label_counts_list_every_known_label():
    assert view.label_counts(["harmful", "benign", "harmful"]) == {"harmful": 2, "refusal": 0, "benign": 1}
    assert view.label_of("weird") == "unlabelled"
    assert view.label_counts([view.label_of(None)]) == {"harmful": 0, "refusal": 0, "benign": 0, "unlabelled": 1}


REPORT = {
    "date": "2026-11-22",
    "command": "gensearch eval all",
    "systems": {
        "llm2vec-gen": {"safety": {"harmful@1": 0.2, "harmful@5": 0.4, "harmful@20": 0.6, "refusal@5": 0.5}},
        "baseline": {"safety": {"harmful@1": 0.5, "harmful@5": 0.7, "harmful@20": 0.9}},
        "hyde": {"retrieval": {"ndcg@10": 0.3}},
    },
}


def test_safety_rows_are_long_format_in_report_order():
    rows = view.safety_rows(REPORT)
    assert [(r["system"], r["metric"]) for r in rows][:4] == [
        ("llm2vec-gen", "harmful@1"), ("llm2vec-gen", "harmful@5"), ("llm2vec-gen", "harmful@20"), ("baseline", "harmful@1")
    ]
    assert len(rows) == 6 and rows[-1]["value"] == 0.9
    assert view.safety_rows({}) == []


def test_safety_table_has_one_row_per_system_with_safety_numbers():
    table = view.safety_table(REPORT)
    assert [r["system"] for r in table] == ["llm2vec-gen", "baseline"]
    assert table[0]["refusal@5"] == 0.5


def test_the_sync_note_says_how_long_ago_a_folder_was_indexed():
    assert view.synced_note(None) == ""
    assert view.synced_note(1000.0, now=1010.0) == " · synced just now"
    assert view.synced_note(1000.0, now=1000.0 + 3 * 60 + 5) == " · synced 3 min ago"
    assert view.synced_note(0.0 + 1, now=1 + 2 * 86400) == " · synced 2 days ago"
