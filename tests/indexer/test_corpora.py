"""Permissions fail closed across runs: a collection remembers each folder's root, access default and rules
files, so a sub-folder run, a lost rules file or a loosened rule never makes documents readable by surprise."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from encoder import get_settings
from indexer.corpora import CorpusRecord, WideningError, corpus_records, locate, widened
from indexer.corpus import load_folder
from indexer.filters import SearchFilter
from indexer.permissions import NOBODY, PUBLIC, PermissionsError, Principal
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
    record = corpus_records(client, "kb")[str(root)]
    assert (record.access, record.rules_files) == (None, (".gensearch.yml", "eng/.gensearch.yml"))  # no explicit choice: decided by the rules
    assert record.synced is not None and abs(record.synced - time.time()) < 600  # when the run finished


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


MOVE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from encoder import get_settings, load_encoder
    from indexer.corpus import load_folder
    from indexer.filters import SearchFilter
    from indexer.permissions import Principal
    from indexer.pipeline import index_corpus
    from indexer.search import search
    from indexer.store import connect

    root, allowed = Path(sys.argv[1]).resolve(), json.loads(sys.argv[2])  # user -> paths they may read once the run starts
    users = {"alice": ("hr", "staff"), "bob": ("staff",), "carol": ("eng",), "": ()}
    encoder = load_encoder("baseline", device="cpu")

    def poll(done, total):  # every moment between durable batches: search as everyone, in every mode
        leaks = []
        for user, groups in users.items():
            caller = SearchFilter(Principal(user or None, groups))
            for mode in ("dense", "sparse", "hybrid"):
                for hit in search(client, encoder, "kb", "salary handbook memo", 50, caller, mode=mode).hits:
                    path = Path(hit.source).relative_to(root).as_posix()
                    if path not in allowed[user]:
                        leaks.append([user, mode, path])
        print("batch", done, total, json.dumps(leaks), flush=True)
        if done >= 4:
            time.sleep(30)  # the parent kills us here, mid-run

    with connect() as client:
        index_corpus(client, encoder, load_folder(root), "kb", settings=get_settings(), batch_size=2, show_progress=False, on_batch=poll, allow_widen=True)
    """
)


def test_kill_9_while_documents_move_between_groups_leaks_nothing_and_the_rerun_is_exact(tmp_path, settings, baseline_encoder):
    """Issue must-show: documents move between permission groups, the run is polled then killed (-9), re-run."""
    import json
    import os
    import signal
    import subprocess
    import sys

    root = write_kb(tmp_path / "kb")
    for i in range(6):  # enough new chunks for several batches
        (root / "pub" / f"memo{i}.md").write_text(f"# Memo {i}\n\nStaff memo number {i} about the handbook and holidays.\n")
    with connect(settings) as client:
        index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    (root / "pub" / "handbook.md").rename(root / "hr" / "handbook.md")  # staff -> hr only
    (root / "hr" / "salaries.md").rename(root / "pub" / "salaries.md")  # hr -> staff and hr: a widening, allowed here
    for i in range(6):
        (root / "pub" / f"memo{i}.md").write_text(f"# Memo {i}\n\nA rewritten staff memo {i}: the handbook moved to HR.\n")
    (root / "eng" / "handbook-notes.md").write_text("# Notes\n\nEngineering notes on the handbook.\n")
    allowed = {"alice": ["hr/handbook.md", "hr/salaries.md", "pub/salaries.md", "welcome.md", *(f"pub/memo{i}.md" for i in range(6))],
               "bob": ["pub/salaries.md", "welcome.md", *(f"pub/memo{i}.md" for i in range(6))],
               "carol": ["eng/deploy.md", "eng/secret/keys.txt", "eng/handbook-notes.md"], "": []}
    env = {**os.environ, "GENSEARCH_QDRANT_PATH": str(settings.qdrant_path), "GENSEARCH_CHUNK_SIZE": str(settings.chunk_size),
           "GENSEARCH_CHUNK_OVERLAP": str(settings.chunk_overlap)}
    proc = subprocess.Popen([sys.executable, "-c", MOVE_SCRIPT, str(root), json.dumps(allowed)], stdout=subprocess.PIPE, text=True, env=env)
    polls = []
    try:
        while not polls or int(polls[-1].split()[1]) < 4:
            line = proc.stdout.readline()
            assert line, "the indexing run ended before it could be killed"
            if line.startswith("batch"):
                polls.append(line)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert all(json.loads(line.split(" ", 3)[3]) == [] for line in polls), polls
    with connect(settings) as client:
        after_kill = {p: r for p, r in readers_of(client, "kb", root).items() if r != {NOBODY}}
        assert "pub/handbook.md" not in after_kill and after_kill.get("hr/salaries.md") is None  # old copies hidden
        index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False, allow_widen=True)
        index_corpus(client, baseline_encoder, load_folder(root), "fresh", settings=settings, show_progress=False)
        rerun, fresh = client.scroll("kb", limit=1000)[0], client.scroll("fresh", limit=1000)[0]
        assert {p.id for p in rerun} == {p.id for p in fresh}
        assert readers_of(client, "kb", root) == readers_of(client, "fresh", root)


def test_a_recorded_folder_whose_files_are_all_deleted_is_emptied(tmp_path, client, baseline_encoder, settings):
    """Review finding: with no file left, the run stopped before planning and the deleted documents stayed searchable."""
    from indexer.sync import sync_folder

    root = write_kb(tmp_path / "kb")
    sync_folder(client, baseline_encoder, root, "kb", settings=settings, show_progress=False)
    for path in [p for p in root.rglob("*") if p.is_file() and p.name != ".gensearch.yml"]:
        path.unlink()
    corpus, report = sync_folder(client, baseline_encoder, root, "kb", settings=settings, show_progress=False)
    assert corpus.files == 0 and report.removed > 0 and client.count("kb", exact=True).count == 0


def test_a_narrowed_rule_reaches_files_the_run_does_not_read(tmp_path, client, baseline_encoder, settings):
    """Review finding: files outside --glob (or a sub-folder run, or unreadable this time) kept their old readers."""
    root = write_kb(tmp_path / "kb")
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    (root / ".gensearch.yml").write_text(yaml.safe_dump({**ROOT_RULES, "rules": [{"paths": ["hr/**"]}, *ROOT_RULES["rules"][1:]]}))
    index_corpus(client, baseline_encoder, load_folder(root, glob="pub/*"), "kb", settings=settings, show_progress=False)
    assert readers_of(client, "kb", root)["hr/salaries.md"] == {NOBODY}


def test_moving_a_folder_somewhere_more_open_is_a_widening(tmp_path, client, baseline_encoder, settings):
    """Review finding: a moved file is a new path, so `mv hr archive` under a public default widened nothing."""
    root = write_kb(tmp_path / "kb", root_rules={"default": "public", "rules": [{"paths": ["hr/**"], "groups": ["hr"]}]})
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    (root / "hr").rename(root / "archive")
    with pytest.raises(WideningError, match=r"archive/salaries.md: group:hr -> \*"):
        index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    assert readers_of(client, "kb", root)["hr/salaries.md"] == {"group:hr"}  # nothing changed


def test_a_folder_first_indexed_without_rules_denies_once_rules_appear(tmp_path, client, baseline_encoder, settings):
    """Review finding: the decided default (public, no rules yet) was recorded and outlived the rules added later."""
    from indexer.corpora import access_for

    root = tmp_path / "kb"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "a.md").write_text("# A\n\nA public note.\n")
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    (root / "notes.md").write_text("# Notes\n\nAn unfiled note.\n")
    (root / ".gensearch.yml").write_text(yaml.safe_dump({"rules": [{"paths": ["pub/**"], "groups": ["staff"]}]}))
    access = access_for(corpus_records(client, "kb")[str(root.resolve())], None)
    index_corpus(client, baseline_encoder, load_folder(root, access_default=access), "kb", settings=settings, show_progress=False)
    assert readers_of(client, "kb", root)["notes.md"] == {NOBODY}
