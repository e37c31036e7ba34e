"""Keyword (BM25) vectors and hybrid search: identifiers survive tokenisation, sparse search finds exact
terms, hybrid fuses both sides in one Qdrant query under the same permission filter."""

from __future__ import annotations

import pytest
from qdrant_client import models

from indexer.corpus import load_folder
from indexer.filters import SearchFilter
from indexer.permissions import principal_for
from indexer.pipeline import index_corpus
from indexer.search import QueryError, search
from indexer.sparse import document_vector, query_vector, term_id, terms
from indexer.store import StoreError
from tests.permissions_kb import SEES, relative, write_kb, write_users

from .conftest import write_docs

IDENTIFIERS = {
    "postgres/monitoring.md": "# Monitoring\n\nThe view pg_stat_activity has one row per server process, showing its current query.\n",
    "postgres/locks.md": "# Locks\n\nThe view pg_locks shows the locks held by open transactions on the server.\n",
}


def test_identifiers_stay_whole_and_also_split_into_parts():
    found = terms("Why is pg_stat_activity empty? See os.path.join and E1101.")
    assert {"pg_stat_activity", "pg", "stat", "activity", "os.path.join", "path", "join", "e1101", "e", "1101"} <= set(found)
    assert "is" not in found and "and" not in found


def test_words_of_any_script_are_terms_and_ascii_terms_are_unchanged():
    assert terms("Die Straße nach München, données, данные") == ["die", "straße", "nach", "münchen", "données", "данные"]
    assert terms("snake_case ist gut") == ["snake_case", "snake", "case", "ist", "gut"]


def test_a_query_of_stop_words_has_no_keywords(docs, client, baseline_encoder):
    assert not query_vector("how is it?").indices
    with pytest.raises(QueryError, match="no keywords"):
        search(client, baseline_encoder, "docs", "how is it?", mode="sparse")
    assert len(search(client, baseline_encoder, "docs", "how is it?", k=2, mode="hybrid").hits) == 2, "hybrid falls back on its dense side"


def test_term_ids_are_stable_32_bit_hashes():
    assert term_id("pg_locks") == term_id("pg_locks") != term_id("pg_lock")
    assert 0 <= term_id("x") < 2**32


def test_term_weights_grow_with_frequency_and_saturate():
    weights = lambda text: dict(zip(document_vector(text).indices, document_vector(text).values))  # noqa: E731
    one, three, many = (weights("vacuum " * n)[term_id("vacuum")] for n in (1, 3, 30))
    assert one < three < many < 2.2, "BM25: more occurrences count, with diminishing returns (k1 + 1 = 2.2)"
    assert query_vector("vacuum vacuum full").values == [1.0, 1.0]


@pytest.fixture()
def docs(tmp_path, client, baseline_encoder, settings):
    root = write_docs(tmp_path / "docs", {**IDENTIFIERS, "notes/gardening.txt": "Tomatoes need six hours of sun a day.\n"})
    index_corpus(client, baseline_encoder, load_folder(root), "docs", settings=settings, show_progress=False)
    return root


@pytest.mark.parametrize("mode", ["sparse", "hybrid"])
def test_an_exact_identifier_is_the_top_hit(docs, client, baseline_encoder, mode):
    hits = search(client, baseline_encoder, "docs", "pg_stat_activity", k=3, mode=mode).hits
    assert hits[0].source.endswith("monitoring.md")


def test_sparse_search_returns_only_chunks_that_share_a_term(docs, client, baseline_encoder):
    hits = search(client, baseline_encoder, "docs", "tomatoes", k=10, mode="sparse").hits
    assert [h.source.rsplit("/", 1)[-1] for h in hits] == ["gardening.txt"]
    dense = search(client, baseline_encoder, "docs", "tomatoes", k=10, mode="dense").hits
    assert len(dense) == 3, "dense search ranks every chunk"


def test_hybrid_applies_the_permission_filter_on_both_sides(tmp_path, client, baseline_encoder, settings):
    kb = write_kb(tmp_path / "kb")
    index_corpus(client, baseline_encoder, load_folder(kb), "kb", settings=settings, show_progress=False)
    users = write_users(tmp_path / "users.yml")
    for user in ("bob", "carol"):
        filters = SearchFilter(principal_for(user, users))
        for mode in ("sparse", "hybrid"):
            hits = search(client, baseline_encoder, "kb", "salary bands signing keys", k=10, filters=filters, mode=mode).hits
            assert relative([h.source for h in hits], kb) <= SEES[user], (user, mode)


def test_a_collection_without_keyword_vectors_says_how_to_fix_it(client, baseline_encoder, docs):
    from indexer.identity import identity_of
    from indexer.store import FORMAT, FORMAT_VERSION

    identity = identity_of(baseline_encoder)
    client.create_collection(
        "old", vectors_config=models.VectorParams(size=identity.dim, distance=models.Distance.COSINE),
        metadata={"format": FORMAT, "format_version": FORMAT_VERSION, "encoder": identity.to_dict()},
    )  # fmt: skip
    with pytest.raises(StoreError, match="no keyword vectors.*--recreate"):
        search(client, baseline_encoder, "old", "pg_locks", mode="hybrid")
    with pytest.raises(QueryError, match="unknown search mode"):
        search(client, baseline_encoder, "docs", "pg_locks", mode="fuzzy")
    assert search(client, baseline_encoder, "old", "pg_locks", mode="auto").hits == [], "auto searches an old collection dense (it is empty here)"


def test_auto_mode_is_hybrid_where_keyword_vectors_exist(docs, client, baseline_encoder):
    auto = search(client, baseline_encoder, "docs", "pg_stat_activity", k=3, mode="auto").hits
    assert [h.id for h in auto] == [h.id for h in search(client, baseline_encoder, "docs", "pg_stat_activity", k=3, mode="hybrid").hits]
    default = search(client, baseline_encoder, "docs", "pg_stat_activity", k=3).hits  # the library default is the product's: dense
    assert [h.id for h in default] == [h.id for h in search(client, baseline_encoder, "docs", "pg_stat_activity", k=3, mode="dense").hits]


@pytest.mark.parametrize(("idf", "leaks"), [("public", False), ("collection", True)])
def test_keyword_scores_depend_only_on_what_the_caller_may_read(tmp_path, baseline_encoder, settings, idf, leaks):
    """Issue row: with collection-wide IDF a word's score reveals it occurs in documents the caller cannot read.
    Public IDF (the default): the same public document scores the same whatever hidden documents hold."""
    import yaml

    from indexer.store import connect, keyword_idf

    public = {"pub/crossing.md": "# Crossing\n\nThe zebra crossing by the office is repainted in May.\n",
              "pub/lunch.md": "# Lunch\n\nThe canteen serves lunch from noon; the office kitchen stays open.\n"}
    hidden = {f"hr/case{i}.md": f"# Case {i}\n\nA confidential zebra incident, case number {i}.\n" for i in range(6)}
    store = settings.model_copy(update={"keyword_idf": idf})
    scores = []
    with connect(store) as client:
        for name, docs in (("only-public", public), ("with-hidden", {**public, **hidden})):
            root = write_docs(tmp_path / name, docs)
            (root / ".gensearch.yml").write_text(yaml.safe_dump({"default": "public", "rules": [{"paths": ["hr/**"], "groups": ["hr"]}]}))
            index_corpus(client, baseline_encoder, load_folder(root), name, settings=store, show_progress=False)
            assert keyword_idf(client, name) == idf
            hits = search(client, baseline_encoder, name, "zebra crossing office", 5, SearchFilter(), mode="sparse").hits
            assert [h.title for h in hits][:1] == ["Crossing"] and all("case" not in h.source for h in hits)
            scores.append(hits[0].score)
    assert (abs(scores[0] - scores[1]) > 1e-6) is leaks, scores


def test_public_idf_ranks_rare_words_above_common_ones():
    from indexer.sparse import public_idf

    assert public_idf("pg_stat_activity") > public_idf("vacuum") > public_idf("table") > public_idf("people")
