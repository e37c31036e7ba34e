"""`gensearch eval search-modes`: dense, keyword and hybrid search measured through the real indexing
pipeline and an embedded Qdrant, with the real (cheap) baseline encoder on a tiny identifier corpus."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder.settings import get_settings
from evaluation import search_modes as sm
from indexer.corpus import Corpus, SourceDoc
from indexer.permissions import PUBLIC
from indexer.search import MODES

PAGES = {
    "view-pg-stat-activity.html": "The pg_stat_activity view has one row per server process, showing the process id, "
    "the user name, the current state and the text of the query the backend is running.",
    "view-pg-locks.html": "The pg_locks view provides access to information about the locks held by open transactions: "
    "lock type, the locked relation, the lock mode and whether the lock was granted.",
    "view-pg-stat-replication.html": "pg_stat_replication shows one row per WAL sender process, with statistics about "
    "replication to the connected standby server: sent position, write lag and sync state.",
    "catalog-pg-class.html": "The catalog pg_class describes tables and most everything else that has columns or is "
    "otherwise similar to a table: indexes, sequences, views and materialized views.",
    "runtime-config-resource.html": "work_mem sets the base maximum amount of memory to be used by a query operation "
    "such as a sort or hash table before writing to temporary disk files.",
    "runtime-config-wal.html": "wal_buffers is the amount of shared memory used for write-ahead log data that has not "
    "yet been written to disk.",
    "cats.html": "Cats are small furry pets. They purr, sleep most of the day and chase mice in the garden.",
}
QUERIES = [
    ("Which columns does pg_stat_activity have?", "view-pg-stat-activity.html"),
    ("Which columns does pg_locks have?", "view-pg-locks.html"),
    ("Which columns does pg_stat_replication have?", "view-pg-stat-replication.html"),
    ("Which columns does pg_class have?", "catalog-pg-class.html"),
    ("What does the work_mem setting control?", "runtime-config-resource.html"),
    ("What does the wal_buffers setting control?", "runtime-config-wal.html"),
]


def tiny_task(name: str = "pg-tiny", relevant: dict[str, str] | None = None) -> sm.Task:
    """Seven pages, six identifier questions; ``relevant`` overrides a query's relevant page."""
    docs = [SourceDoc(f"pg/{page}", text, "html", page.removesuffix(".html")) for page, text in PAGES.items()]
    relevant = relevant or {}
    queries = [(q, frozenset({f"pg/{relevant.get(q, page)}"})) for q, page in QUERIES]
    return sm.Task(name, Corpus("pg", docs=docs), queries)


@pytest.fixture(scope="module")
def baseline_encoder():
    from encoder import load_encoder

    return load_encoder("baseline", device="cpu")


@pytest.fixture(scope="module")
def measured(baseline_encoder):
    """One run over two tasks: the tiny corpus as it is, and the same with every answer pointing at the cats page."""
    wrong = {q: "cats.html" for q, _ in QUERIES}
    return sm.run_search_modes([tiny_task(), tiny_task("pg-wrong", wrong)], baseline_encoder, "baseline", settings=get_settings())


def test_every_mode_is_measured_on_every_task_with_scores_between_0_and_1(measured):
    assert measured["encoder"] == "baseline" and measured["cpu"]
    assert list(measured["tasks"]) == ["pg-tiny", "pg-wrong"]
    out = measured["tasks"]["pg-tiny"]
    assert (out["documents"], out["queries"]) == (7, 6) and out["chunks"] >= 7 and out["index_seconds"] >= 0
    for mode in MODES:
        assert set(out[mode]) == {"ndcg@10", "recall@10", "mrr@10", "ms_per_query"}, mode
        assert all(0.0 <= out[mode][key] <= 1.0 for key in ("ndcg@10", "recall@10", "mrr@10")), out[mode]
        assert out[mode]["ms_per_query"] > 0


def test_keyword_search_puts_the_page_naming_the_identifier_first(measured):
    sparse = measured["tasks"]["pg-tiny"]["sparse"]
    assert sparse["mrr@10"] == 1.0 and sparse["ndcg@10"] == 1.0  # every query: its page at rank 1
    assert measured["tasks"]["pg-tiny"]["hybrid"]["recall@10"] == 1.0


def test_scores_follow_the_relevance_labels(measured):
    """The same searches scored against a page that never matches a query: no mode gets credit at rank 1."""
    for mode in MODES:
        wrong = measured["tasks"]["pg-wrong"][mode]
        assert wrong["mrr@10"] < 0.5 and wrong["ndcg@10"] < measured["tasks"]["pg-tiny"][mode]["ndcg@10"], mode


def test_each_mode_searches_its_own_vectors(measured):
    """The cats page shares no term with any query: keyword search never returns it, dense search (7 pages,
    10 ranks) always does, hybrid keeps the dense side's candidates."""
    wrong = measured["tasks"]["pg-wrong"]
    assert wrong["sparse"]["recall@10"] == 0.0
    assert wrong["dense"]["recall@10"] == 1.0 and wrong["hybrid"]["recall@10"] == 1.0


def test_page_ranking_keeps_each_page_once_at_its_best_rank():
    assert sm.page_ranking(["a", "b", "a", "c", "b", "d"], k=3) == ["a", "b", "c"]
    assert sm.page_ranking([], k=10) == []


def test_postgres_queries_sample_parameters_and_ask_about_every_catalog_and_view():
    pages = {
        "runtime-config-wal.html": '<dt id="GUC-WAL-LEVEL"><span class="term"><code class="varname">wal_level</code> (enum)'
        '<dt id="GUC-FSYNC"><span class="term"><code class="varname">fsync</code> (boolean)',
        "runtime-config-resource.html": '<dt id="GUC-WORK-MEM"><span class="term"><code class="varname">work_mem</code>',
        "view-pg-stat-replication.html": "<p>pg_stat_replication</p>",
        "catalog-pg-class.html": "<p>pg_class</p>",
        "monitoring-stats.html": '<dt id="GUC-NOT-COUNTED"><span class="term"><code class="varname">not_a_query</code>',
    }
    every = sm.postgres_queries(pages, gucs=100)
    assert sorted(every[:3]) == [
        ("What does the fsync setting control?", "runtime-config-wal.html"),
        ("What does the wal_level setting control?", "runtime-config-wal.html"),
        ("What does the work_mem setting control?", "runtime-config-resource.html"),
    ]
    assert every[3:] == [("Which columns does pg_class have?", "catalog-pg-class.html"),
                         ("Which columns does pg_stat_replication have?", "view-pg-stat-replication.html")]
    two = sm.postgres_queries(pages, gucs=2, seed=1)
    assert len(two) == 4 and two == sm.postgres_queries(pages, gucs=2, seed=1)  # seeded: the same sample every run
    assert sm.catalog_identifier("view-pg-stat-activity.html") == "pg_stat_activity" and sm.catalog_identifier("sql-select.html") is None


def test_the_postgres_task_names_the_package_to_install_when_the_docs_are_missing(tmp_path):
    with pytest.raises(sm.PostgresDocsMissing, match="apt-get install postgresql-doc-15"):
        sm.postgres_task(sm.TaskOptions(get_settings()), docs=tmp_path / "no-such-folder")


@pytest.mark.skipif(not sm.PG_DOCS.is_dir(), reason="needs apt-get install postgresql-doc-15")
def test_the_postgres_task_asks_about_pages_that_everyone_may_read():
    task = sm.postgres_task(sm.TaskOptions(get_settings(), gucs=150, seed=0))
    sources = {d.source for d in task.corpus.docs}
    assert len(task.queries) > 150 and sum(q.startswith("What does the ") for q, _ in task.queries) == 150
    assert all(rel <= sources for _, rel in task.queries)
    pg_class = dict(task.queries)["Which columns does pg_class have?"]
    assert [p.rsplit("/", 1)[-1] for p in pg_class] == ["catalog-pg-class.html"]
    assert any(s.endswith("monitoring-stats.html") for s in sources)
    assert all(d.readers == (PUBLIC,) for d in task.corpus.docs)  # an anonymous search must be able to find them


def test_report_names_keep_one_file_per_encoder():
    assert sm.report_stem("baseline") == "eval_search_modes"
    assert sm.report_stem("llm2vec-gen") == "eval_search_modes_llm2vec-gen"
    assert sm.report_stem("/models/my adapter/") == "eval_search_modes_my-adapter"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_eval_search_modes_writes_the_json_report_and_the_table(tmp_path, monkeypatch):
    monkeypatch.setitem(sm.TASKS, "pg-tiny", lambda options: tiny_task())
    out = tmp_path / "reports"
    args = ["eval", "search-modes", "--out", str(out), "--tasks", "pg-tiny", "--chunks-per-query", "20"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output

    report = json.loads((out / "eval_search_modes.json").read_text())
    assert report["command"] == "gensearch " + " ".join(args)  # options in the command's own order
    assert report["encoder"] == "baseline" and report["cpu"] and report["config"]["chunks_per_query"] == 20
    assert set(report["tasks"]["pg-tiny"]) >= {"documents", "chunks", "queries", "index_seconds", *MODES}
    assert report["tasks"]["pg-tiny"]["sparse"]["mrr@10"] == 1.0
    table = (out / "eval_search_modes.md").read_text()
    assert all(f"| {mode} |" in table for mode in MODES) and report["command"] in table and "pg-tiny (6 queries" in table
    assert "nDCG@10" in result.output and str(out / "eval_search_modes.json") in result.output


def test_eval_search_modes_explains_a_missing_postgres_docs_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sm, "PG_DOCS", tmp_path / "missing")
    result = invoke("eval", "search-modes", "--tasks", "postgres-identifiers", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1 and "apt-get install postgresql-doc-15" in result.output
    assert not (tmp_path / "r").exists()


def test_eval_search_modes_rejects_unknown_tasks_and_options_of_other_parts(tmp_path):
    result = invoke("eval", "search-modes", "--tasks", "faq,bm25", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1 and "unknown task(s) bm25" in result.output and "postgres-identifiers" in result.output
    result = invoke("eval", "search-modes", "--systems", "llm2vec-gen")
    assert result.exit_code == 2 and "does not take --systems" in result.output
    result = invoke("eval", "retrieval", "--encoder", "baseline")
    assert result.exit_code == 2 and "does not take --encoder" in result.output
    assert not (tmp_path / "r").exists()
