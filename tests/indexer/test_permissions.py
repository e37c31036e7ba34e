"""Permissions: .gensearch.yml rules give each document its readers, every read path filters on the caller
inside the Qdrant query, and a changed rule re-labels stored chunks without re-embedding them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from encoder import get_settings
from indexer.corpora import WideningError
from indexer.corpus import load_folder
from indexer.filters import SearchFilter, parse_date
from indexer.llama import BackboneLLM
from indexer.permissions import NOBODY, PUBLIC, PermissionsError, Principal, glob_match, load_policy, normalise_pattern, principal_for
from indexer.pipeline import index_corpus
from indexer.rag import ask, backbone_for, retriever
from indexer.search import search
from tests.permissions_kb import DOCS, ROOT_RULES, SEES, relative, write_kb, write_users


@pytest.fixture()
def users_file(tmp_path) -> Path:
    return write_users(tmp_path / "users.yml")


@pytest.fixture()
def kb(tmp_path, client, baseline_encoder, settings):
    root = write_kb(tmp_path / "kb")
    index_corpus(client, baseline_encoder, load_folder(root), "kb", settings=settings, show_progress=False)
    return root


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        ("hr/a.md", "hr/**", True), ("hr/x/y/a.md", "hr/**", True), ("hr.md", "hr/**", False),
        ("a.md", "*.md", True), ("pub/a.md", "*.md", False), ("pub/a.md", "**/*.md", True), ("a.md", "**/*.md", True),
        ("secret/k.txt", "secret/*", True), ("secret/x/k.txt", "secret/*", False), ("a.m", "a.?", True),
    ],
)  # fmt: skip
def test_globs_keep_star_inside_one_folder_and_double_star_across(path, pattern, matches):
    assert glob_match(path, pattern) is matches


@pytest.mark.parametrize(
    ("written", "meant"),
    [("hr/**", "hr/**"), ("/hr/**", "hr/**"), ("./hr/**", "hr/**"), ("hr/", "hr/**"), ("/hr/", "hr/**"), ("hr//a.md", "hr/a.md"), ("./a/./b.md", "a/b.md")],
)  # fmt: skip
def test_rule_paths_are_read_relative_to_their_folder_however_they_are_written(written, meant):
    assert normalise_pattern(written, Path(".gensearch.yml")) == meant


@pytest.mark.parametrize(("written", "message"), [("../hr/**", "'..' is not allowed"), ("hr\\a.md", "use '/'"), ("/", "names no file"), ("./", "names no file")])
def test_rule_paths_that_cannot_mean_a_file_in_the_folder_are_errors(tmp_path, written, message):
    (tmp_path / ".gensearch.yml").write_text(yaml.safe_dump({"rules": [{"paths": [written], "groups": ["hr"]}]}))
    with pytest.raises(PermissionsError, match=message):
        load_policy(tmp_path)


def test_a_written_folder_rule_protects_what_is_below_it(tmp_path):
    (tmp_path / ".gensearch.yml").write_text(yaml.safe_dump({"rules": [{"paths": ["/hr/"], "groups": ["hr"]}]}))
    assert load_policy(tmp_path).readers("hr/x/salaries.md") == ("group:hr",)


def test_documents_reached_through_links_get_the_rules_of_the_real_file(tmp_path):
    root, outside = tmp_path / "kb", tmp_path / "elsewhere"
    (root / "hr").mkdir(parents=True)
    outside.mkdir()
    (root / "hr" / "salaries.md").write_text("Salary bands for 2026.")
    (root / ".gensearch.yml").write_text(yaml.safe_dump({"default": "public", "rules": [{"paths": ["hr/**"], "groups": ["hr"]}]}))
    (outside / "leak.md").write_text("A file outside the knowledge base.")
    (root / "public-view").symlink_to(root / "hr")  # a public-looking path to a protected folder
    (root / "outside").symlink_to(outside)
    readers = {Path(d.source).name: d.readers for d in load_folder(root).docs}
    assert readers == {"salaries.md": ("group:hr",), "leak.md": (NOBODY,)}


def test_rules_are_inherited_and_the_last_match_wins(tmp_path):
    policy = load_policy(write_kb(tmp_path / "kb"))
    assert policy.default == "deny"
    assert policy.readers("hr/salaries.md") == ("group:hr",)
    assert policy.readers("welcome.md") == ("group:staff", "group:hr")
    assert policy.readers("eng/deploy.md") == ("group:eng",), "eng/.gensearch.yml rules apply below eng/"
    assert policy.readers("eng/secret/keys.txt") == ("user:carol",), "the deeper, later rule wins"
    assert policy.readers("notes.txt") == (NOBODY,)


def test_without_any_rules_the_settings_default_applies(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    assert load_policy(tmp_path, "public").readers("a.txt") == (PUBLIC,)
    assert load_policy(tmp_path, "deny").readers("a.txt") == (NOBODY,)


@pytest.mark.parametrize(
    ("where", "content", "message"),
    [
        ("sub/.gensearch.yml", "default: public\n", "allowed only in the corpus root"),
        (".gensearch.yml", "default: maybe\n", "must be 'deny' or 'public'"),
        (".gensearch.yml", "rules:\n  - groups: [hr]\n", "needs 'paths'"),
        (".gensearch.yml", "rule: []\n", "unknown keys"),
        (".gensearch.yml", "rules: [\n", "cannot read it as YAML"),
        (".gensearch.yml", "rules:\n  - paths: ['*']\n    groups: [1]\n", "non-empty strings"),
    ],
)
def test_unclear_rule_files_are_errors_that_name_the_file(tmp_path, where, content, message):
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text(content)
    with pytest.raises(PermissionsError, match=message) as info:
        load_policy(tmp_path)
    assert ".gensearch.yml" in str(info.value)


def test_unknown_users_are_errors_never_public(users_file):
    assert principal_for("alice", users_file) == Principal("alice", ("hr", "staff"))
    assert principal_for(None, users_file).tokens == [PUBLIC]
    with pytest.raises(PermissionsError, match="unknown user 'mallory'"):
        principal_for("mallory", users_file)
    with pytest.raises(PermissionsError, match="no users file"):
        principal_for("alice", None)


@pytest.mark.parametrize("user", list(SEES))
def test_search_and_the_retriever_return_only_what_the_caller_may_read(kb, client, baseline_encoder, users_file, user):
    filters = SearchFilter(principal=principal_for(user, users_file))
    own_texts = tuple(DOCS.values())  # a forbidden document's own text must not find it either
    for query in ("salary bands", "paid leave holidays", "deploy the service", "signing keys", "unfiled notes", *own_texts):
        hits = search(client, baseline_encoder, "kb", query, k=10, filters=filters).hits
        assert relative([h.source for h in hits], kb) == SEES[user], (user, query)
    nodes = retriever(client, "kb", baseline_encoder, k=10, filters=filters).retrieve("what does the wiki say?")
    assert relative([n.node.metadata["source"] for n in nodes], kb) == SEES[user]


def test_ask_hands_the_llm_only_readable_chunks(kb, client, settings, smol_encoder, baseline_encoder, users_file):
    llm = BackboneLLM(backbone_for(smol_encoder, settings), max_new_tokens=4)
    for user in ("alice", "carol"):
        answer = ask(client, baseline_encoder, "kb", "What do the documents say?", k=6, filters=SearchFilter(principal_for(user, users_file)), llm=llm, settings=settings)
        assert relative([c.source for c in answer.citations], kb) == SEES[user]


def test_metadata_filters_run_in_the_query(kb, client, baseline_encoder):
    everyone = Principal("root", ("hr", "staff", "eng"))
    def sources(**kw) -> set[str]:
        hits = search(client, baseline_encoder, "kb", "company documents", k=10, filters=SearchFilter(principal=everyone, **kw)).hits
        return relative([h.source for h in hits], kb)
    assert sources(folder="eng") == {"eng/deploy.md"}, "the user:carol file stays hidden even inside the folder"
    assert sources(formats=("text",)) == set()
    assert sources(formats=("markdown",)) == {"hr/salaries.md", "pub/handbook.md", "welcome.md", "eng/deploy.md"}
    assert sources(modified_after=parse_date("2999-01-01")) == set()
    assert sources(modified_before=parse_date("2999-01-01")) == sources()


def test_a_changed_rule_relabels_stored_chunks_without_re_embedding(kb, client, baseline_encoder, settings, users_file):
    bob = SearchFilter(principal_for("bob", users_file))
    assert "hr/salaries.md" not in relative([h.source for h in search(client, baseline_encoder, "kb", "salary bands", 10, bob).hits], kb)
    rules = {**ROOT_RULES, "rules": [{"paths": ["hr/**"], "groups": ["hr", "staff"]}, *ROOT_RULES["rules"][1:]]}
    (kb / ".gensearch.yml").write_text(yaml.safe_dump(rules))
    with pytest.raises(WideningError, match="hr/salaries.md: group:hr -> group:hr, group:staff"):
        index_corpus(client, baseline_encoder, load_folder(kb), "kb", settings=settings, show_progress=False)
    assert "hr/salaries.md" not in relative([h.source for h in search(client, baseline_encoder, "kb", "salary bands", 10, bob).hits], kb)
    report = index_corpus(client, baseline_encoder, load_folder(kb), "kb", settings=settings, show_progress=False, allow_widen=True)
    assert report.added == 0 and report.removed == 0 and report.updated >= 1
    assert "hr/salaries.md" in relative([h.source for h in search(client, baseline_encoder, "kb", "salary bands", 10, bob).hits], kb)
    again = index_corpus(client, baseline_encoder, load_folder(kb), "kb", settings=settings, show_progress=False)
    assert again.updated == 0 and again.added == 0


def test_removing_a_group_from_a_rule_revokes_access_without_re_embedding(kb, client, baseline_encoder, settings, users_file):
    alice = SearchFilter(principal_for("alice", users_file))
    salaries = DOCS["hr/salaries.md"]
    assert "hr/salaries.md" in relative([h.source for h in search(client, baseline_encoder, "kb", salaries, 10, alice).hits], kb)
    rules = {**ROOT_RULES, "rules": [{"paths": ["hr/**"]}, *ROOT_RULES["rules"][1:]]}  # a rule with no readers: nobody
    (kb / ".gensearch.yml").write_text(yaml.safe_dump(rules))
    report = index_corpus(client, baseline_encoder, load_folder(kb), "kb", settings=settings, show_progress=False)
    assert (report.added, report.tokens, report.removed) == (0, 0, 0), "nothing embedded: only payloads rewritten"
    assert report.updated >= 1
    assert "hr/salaries.md" not in relative([h.source for h in search(client, baseline_encoder, "kb", salaries, 10, alice).hits], kb)


def test_cli_search_as_a_user(kb, client, users_file, settings, monkeypatch):
    from app.cli import cli

    client.close()  # the CLI opens the embedded store itself
    monkeypatch.setenv("GENSEARCH_QDRANT_PATH", str(settings.qdrant_path))
    monkeypatch.setenv("GENSEARCH_USERS_FILE", str(users_file))
    monkeypatch.setenv("GENSEARCH_CHUNK_SIZE", str(settings.chunk_size))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        as_bob = runner.invoke(cli, ["search", "salary bands", "-c", "kb", "-e", "baseline", "-k", "10", "--as", "bob", "--json"])
        assert as_bob.exit_code == 0, as_bob.output
        assert "salaries.md" not in as_bob.stdout and "handbook.md" in as_bob.stdout
        as_alice = runner.invoke(cli, ["search", "salary bands", "-c", "kb", "-e", "baseline", "--as", "alice", "--json"])
        assert "salaries.md" in as_alice.stdout
        unknown = runner.invoke(cli, ["search", "salary bands", "-c", "kb", "-e", "baseline", "--as", "mallory"])
        assert unknown.exit_code == 1 and "unknown user 'mallory'" in unknown.output
        bad_date = runner.invoke(cli, ["search", "salary", "-c", "kb", "-e", "baseline", "--modified-after", "last week"])
        assert bad_date.exit_code == 2 and "not an ISO date" in bad_date.output
    finally:
        get_settings.cache_clear()
