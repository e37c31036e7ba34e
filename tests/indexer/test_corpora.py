"""Permissions fail closed across runs: a collection remembers each folder's root, access default and rules
files, so a sub-folder run, a lost rules file or a loosened rule never makes documents readable by surprise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from encoder import get_settings
from indexer.corpora import CorpusRecord, WideningError, corpus_records, locate, widened
from indexer.corpus import load_folder
from indexer.filters import SearchFilter
from indexer.permissions import NOBODY, PUBLIC, Principal, PermissionsError
from indexer.pipeline import index_corpus
from indexer.search import search
from indexer.store import connect
from tests.permissions_kb import DOCS, ROOT_RULES, relative, write_kb

ANONYMOUS = SearchFilter(Principal.anonymous())


def readers_of(client, collection: str, root: Path) -> dict[str, set[str]]:
    """Relative path -> the reader tokens stored on its chunks."""
    points, _ = client.scroll(collection, limit=1000, with_payload=["path", "readers"])
    out: dict[str, set[str]] = {}
    for p in points:
        out.setdefault(p.payload["path"], set()).update(p.payload["readers"])
    return out


def anonymous_sees(client, encoder, collection: str, root: Path) -> set[str]:
    hits = set()
    for text in DOCS.values():
        hits |= relative([h.source for h in search(client, encoder, collection, text, 10, ANONYMOUS).hits], root)
    return hits


@pytest.fixture()
def cli_env(settings, monkeypatch):
    """`gensearch` commands on this test's embedded store, with its small chunks."""
    from app.cli import cli

    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(settings.qdrant_path))
    monkeypatch.setenv("GENSEARCH_CHUNK_SIZE", str(settings.chunk_size))
    monkeypatch.delenv("GENSEARCH_ACCESS_DEFAULT", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli, [*args, "-e", "baseline"])
    get_settings.cache_clear()


def test_a_folder_with_rules_and_no_default_denies_what_no_rule_covers(tmp_path):
    rules = {"rules": ROOT_RULES["rules"]}  # no `default:` line
    corpus = load_folder(write_kb(tmp_path / "kb", root_rules=rules))
    assert corpus.access == "deny" and corpus.rules_files == (".gensearch.yml", "eng/.gensearch.yml")
    assert {d.title: d.readers for d in corpus.docs}["notes"] == (NOBODY,)


def test_a_folder_without_rules_is_public_and_the_operator_may_say_deny(docs_dir):
    assert load_folder(docs_dir).access == "public"
    assert all(d.readers == (PUBLIC,) for d in load_folder(docs_dir).docs)
    assert all(d.readers == (NOBODY,) for d in load_folder(docs_dir, access_default="deny").docs)


def test_the_collection_records_each_folder(tmp_path, client, baseline_encoder, settings):
    root = write_kb(tmp_path / "kb")
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    assert corpus_records(client, "kb") == {str(root): CorpusRecord(str(root), "deny", (".gensearch.yml", "eng/.gensearch.yml"))}


def test_a_sub_folder_is_located_inside_its_recorded_root(tmp_path):
    records = {str(tmp_path / "kb"): CorpusRecord(str(tmp_path / "kb"), "deny")}
    assert locate(records, tmp_path / "kb" / "hr") == (tmp_path / "kb", "hr")
    assert locate(records, tmp_path / "kb") == (tmp_path / "kb", None)
    assert locate(records, tmp_path / "other") == (tmp_path / "other", None)


def test_indexing_a_sub_folder_keeps_the_roots_rules_and_everything_else(tmp_path, cli_env, settings, baseline_encoder):
    """Issue row: `index kb -c kb` then `index kb/hr -c kb` re-labelled hr documents public."""
    root = write_kb(tmp_path / "kb")
    assert cli_env("index", str(root), "-c", "kb").exit_code == 0
    with connect(settings) as client:
        before = readers_of(client, "kb", root)
    sub = cli_env("index", str(root / "hr"), "-c", "kb")
    assert sub.exit_code == 0, sub.output
    assert "hr/ is part of" in sub.output
    with connect(settings) as client:
        assert readers_of(client, "kb", root) == before  # hr still hr-only, nothing outside hr/ deleted
        assert "hr/salaries.md" not in anonymous_sees(client, baseline_encoder, "kb", root)


@pytest.mark.parametrize("damage", ["emptied", "misnamed", "deleted"])
def test_a_lost_root_rules_file_stops_the_run_and_changes_nothing(tmp_path, cli_env, settings, damage):
    """Issue row: an emptied, misnamed or deleted root .gensearch.yml re-labelled every document public."""
    root = write_kb(tmp_path / "kb")
    assert cli_env("index", str(root), "-c", "kb").exit_code == 0
    with connect(settings) as client:
        before = readers_of(client, "kb", root)
    rules = root / ".gensearch.yml"
    if damage == "emptied":
        rules.write_text("")
    elif damage == "misnamed":
        rules.rename(root / ".gensearch.yaml")
    else:
        rules.unlink()
    result = cli_env("index", str(root), "-c", "kb")
    assert result.exit_code == 1 and "now missing or empty: .gensearch.yml" in result.output
    assert "Traceback" not in result.output and "error:" in result.output, result.output
    if damage == "misnamed":
        assert "rules are read only from files named .gensearch.yml" in result.output
    with connect(settings) as client:
        assert readers_of(client, "kb", root) == before


def test_a_removed_rules_file_is_accepted_with_allow_widen(tmp_path, cli_env, settings):
    root = write_kb(tmp_path / "kb")
    assert cli_env("index", str(root), "-c", "kb").exit_code == 0
    (root / "eng" / ".gensearch.yml").unlink()  # eng falls back to the recorded default: deny
    result = cli_env("index", str(root), "-c", "kb", "--allow-widen")
    assert result.exit_code == 0, result.output
    with connect(settings) as client:
        assert readers_of(client, "kb", root)["eng/deploy.md"] == {NOBODY}
        assert corpus_records(client, "kb")[str(root)].rules_files == (".gensearch.yml",)


def test_a_run_that_widens_readers_is_refused_before_anything_is_written(tmp_path, cli_env, settings):
    root = write_kb(tmp_path / "kb")
    assert cli_env("index", str(root), "-c", "kb").exit_code == 0
    (root / ".gensearch.yml").write_text(yaml.safe_dump({**ROOT_RULES, "default": "public"}))
    refused = cli_env("index", str(root), "-c", "kb")
    assert refused.exit_code == 1 and "would let more people read 1 document(s): notes.txt: nobody -> *" in refused.output
    with connect(settings) as client:
        assert readers_of(client, "kb", root)["notes.txt"] == {NOBODY}
    assert cli_env("index", str(root), "-c", "kb", "--allow-widen").exit_code == 0
    with connect(settings) as client:
        assert readers_of(client, "kb", root)["notes.txt"] == {PUBLIC}


def test_the_recorded_default_is_kept_when_the_root_file_drops_its_default_line(tmp_path, client, baseline_encoder, settings):
    root = write_kb(tmp_path / "kb", root_rules={"default": "deny", "rules": ROOT_RULES["rules"]})
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    (root / ".gensearch.yml").write_text(yaml.safe_dump({"rules": ROOT_RULES["rules"]}))
    recorded = corpus_records(client, "kb")[str(root)].access
    index_corpus(client, baseline_encoder, load_folder(root, access_default=recorded), "kb", settings=settings, show_progress=False)
    assert readers_of(client, "kb", root)["notes.txt"] == {NOBODY}


def test_a_hidden_chunk_still_counts_with_the_readers_it_had(tmp_path, client, baseline_encoder, settings):
    """After a killed run hid a document's old chunks, the next run still sees who could read it."""
    root = write_kb(tmp_path / "kb")
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    from indexer.pipeline import hide_points, stored_document_fields

    stored = stored_document_fields(client, "kb", str(root))
    hr = [pid for pid, f in stored.items() if f["path"] == "hr/salaries.md"]
    hide_points(client, "kb", stored, hr)  # as a killed run leaves an edited file's old chunks
    (root / "hr" / "salaries.md").write_text(DOCS["hr/salaries.md"] + "\nBands are published in April.\n")
    (root / ".gensearch.yml").write_text(yaml.safe_dump({**ROOT_RULES, "rules": [{"paths": ["hr/**"], "groups": ["hr", "staff"]}, *ROOT_RULES["rules"][1:]]}))
    with pytest.raises(WideningError, match="hr/salaries.md: group:hr -> group:hr, group:staff"):
        index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)


def test_widened_counts_only_documents_that_gain_a_reader():
    before = {"a": {"group:hr"}, "b": {NOBODY}, "c": {PUBLIC}, "d": {"group:hr", "group:staff"}}
    after = {"a": ("group:hr",), "b": ("group:hr",), "c": (PUBLIC,), "d": ("group:hr",), "new": (PUBLIC,)}
    assert widened(before, after) == [("b", set(), {"group:hr"})]


def test_an_unreadable_rules_file_is_an_error(tmp_path):
    root = write_kb(tmp_path / "kb")
    (root / ".gensearch.yml").write_bytes(b"\xff\xfe rules: [")
    with pytest.raises(PermissionsError, match="cannot read it as YAML"):
        load_folder(root)


def test_a_new_folder_below_rules_or_one_holding_a_recorded_root_is_refused(tmp_path):
    root = write_kb(tmp_path / "kb")
    with pytest.raises(PermissionsError, match="Index .*kb first"):
        locate({}, root / "hr")  # kb/.gensearch.yml covers hr: never index hr on its own
    with pytest.raises(PermissionsError, match="already indexed in this collection as a folder of its own"):
        locate({str(root / "eng"): CorpusRecord(str(root / "eng"), "deny")}, root)
