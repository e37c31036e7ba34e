"""Dense vs keyword (BM25) vs hybrid search, side by side in one run, through the product's read path.

    gensearch eval search-modes                          # baseline dense side -> reports/eval_search_modes.json, .md
    gensearch eval search-modes --encoder llm2vec-gen    # the product's encoder -> eval_search_modes_llm2vec-gen.json

Unlike the rest of ``gensearch eval`` (exact cosine in numpy), this part measures the real search path:
each task's corpus is indexed once by ``indexer.pipeline.index_corpus`` into a fresh embedded Qdrant in a
temporary folder (dense and keyword vectors), then every query is searched with
``indexer.search.search(mode=...)`` for every mode in ``indexer.search.MODES``.

Tasks:

1. **faq**: the evaluation's Python FAQ task (``evaluation.datasets.faq_dataset``): questions against the
   FAQ answer passages; relevant = the question's own answer.
2. **postgres-identifiers**: built from Debian's ``postgresql-doc-15`` (SOURCES.md, evaluation only): for
   a seeded sample of the configuration parameters defined in ``runtime-config-*.html``
   (``<dt id="GUC-...">``) the query "What does the <name> setting control?", and for every system
   catalog / view page (``catalog-pg-*.html``, ``view-pg-*.html``) "Which columns does <pg_name> have?";
   relevant = the page that defines it. The corpus is those pages plus ``monitoring-stats.html``.

Ranking is per page: the top ``chunks_per_query`` chunk hits are collapsed to their page (first
occurrence), then nDCG@10, Recall@10 and MRR@10 against the relevant page(s).

Report (``<stem>.json``; the shape of the older ``reports/hybrid_search*.json`` plus run metadata)::

    {"date", "command", "seconds", "encoder", "cpu", "machine", "config",
     "tasks": {TASK: {"documents", "chunks", "queries", "index_seconds",
                      MODE: {"ndcg@10", "recall@10", "mrr@10", "ms_per_query"}}}}
"""

from __future__ import annotations

import datetime
import html
import json
import logging
import os
import platform
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoder import Encoder
from encoder.device import cpu_model
from encoder.settings import Settings
from indexer.corpus import Corpus, SourceDoc, load_file
from indexer.pipeline import index_corpus
from indexer.search import MODES, QueryError, search
from indexer.store import connect

from . import datasets as ds
from .metrics import retrieval_metrics

log = logging.getLogger(__name__)

PG_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
PG_PACKAGE = "postgresql-doc-15"
K = 10
CHUNKS_PER_QUERY = 30
GUCS = 150
DEFAULT_ENCODER = "baseline"
STEM = "eval_search_modes"

_GUC = re.compile(r'<dt id="GUC-[^"]*"><span class="term"><code class="varname">([a-z0-9_.]+)</code>')

SearchQuery = tuple[str, frozenset[str]]  # (query text, sources of the relevant pages)


class PostgresDocsMissing(FileNotFoundError):
    """The PostgreSQL HTML documentation (Debian postgresql-doc-15) is not installed."""


@dataclass
class Task:
    """One measured task: a corpus to index and queries with their relevant sources."""

    name: str
    corpus: Corpus
    queries: list[SearchQuery]

    @property
    def collection(self) -> str:
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class TaskOptions:
    """What task builders may use: the settings (FAQ docs folder), the PostgreSQL sample size, the seed."""

    settings: Settings
    gucs: int = GUCS
    seed: int = 0


# --------------------------------------------------------------------------- tasks


def faq_task(options: TaskOptions) -> Task:
    """The Python FAQ: each question against the 179 answer passages (one relevant passage each)."""
    queries, passages = ds.faq_dataset(options.settings)
    corpus = Corpus("faq-passages", docs=[SourceDoc(p.id, p.text, "text", "") for p in passages])
    return Task("faq", corpus, [(q.text, frozenset(q.relevant)) for q in queries])


def guc_names(page_html: str) -> list[str]:
    """The configuration parameters a ``runtime-config-*.html`` page defines, in page order."""
    return _GUC.findall(page_html)


def catalog_identifier(page_name: str) -> str | None:
    """``catalog-pg-class.html`` -> ``pg_class``, ``view-pg-stat-activity.html`` -> ``pg_stat_activity``; else None."""
    stem = page_name.removesuffix(".html")
    if not stem.startswith(("catalog-pg-", "view-pg-")):
        return None
    return html.unescape("pg_" + stem.split("-pg-", 1)[1].replace("-", "_"))


def postgres_queries(pages: Mapping[str, str], gucs: int, seed: int = 0) -> list[tuple[str, str]]:
    """(query, relevant page name) pairs from page name -> HTML, pages in name order: a seeded sample of
    ``gucs`` parameter questions first, then one column question per catalog / view page."""
    names = sorted(pages)
    defined = [(guc, page) for page in names if page.startswith("runtime-config-") for guc in guc_names(pages[page])]
    picked = random.Random(seed).sample(defined, min(gucs, len(defined)))
    queries = [(f"What does the {guc} setting control?", page) for guc, page in picked]
    for page in names:
        ident = catalog_identifier(page)
        if ident:
            queries.append((f"Which columns does {ident} have?", page))
    return queries


def postgres_pages(docs: Path | None = None) -> list[Path]:
    """The query pages of the PostgreSQL task (runtime-config, catalog, view) under ``docs`` (default ``PG_DOCS``)."""
    docs = docs or PG_DOCS
    if not docs.is_dir():
        raise PostgresDocsMissing(f"{docs} is missing: the postgres-identifiers task reads the PostgreSQL docs; "
                                  f"apt-get install {PG_PACKAGE} (Debian, SOURCES.md) or leave the task out with --tasks faq")
    return [*sorted(docs.glob("runtime-config-*.html")), *sorted(docs.glob("catalog-pg-*.html")), *sorted(docs.glob("view-pg-*.html"))]


def postgres_task(options: TaskOptions, docs: Path | None = None) -> Task:
    """Parameter and catalog questions against the PostgreSQL pages that define them (``docs``: default ``PG_DOCS``)."""
    docs = docs or PG_DOCS
    pages = postgres_pages(docs)
    corpus = Corpus(str(docs.resolve()))
    for page in [*pages, docs / "monitoring-stats.html"]:
        loaded = load_file(page)  # public: these pages carry no permission rules
        if isinstance(loaded, SourceDoc):
            corpus.docs.append(loaded)
        else:
            corpus.skipped.append(loaded)
            log.warning("postgres-identifiers: skipped %s (%s)", loaded.path, loaded.reason)
    source = {Path(d.source).name: d.source for d in corpus.docs}
    pairs = postgres_queries({p.name: p.read_text(encoding="utf-8") for p in pages}, options.gucs, options.seed)
    queries = [(text, frozenset({source[page]})) for text, page in pairs if page in source]
    log.info("postgres-identifiers: %d queries over %d pages", len(queries), len(corpus.docs))
    return Task("postgres-identifiers", corpus, queries)


def chatterbot_dev_task(options: TaskOptions) -> Task:
    """Development data (training sources, never the evaluation's): chatterbot questions -> the corpus's own human
    answers (``evaluation.fusion.chatterbot_dev``), for choosing the read mode without touching the evaluation."""
    from training import datapkg
    from training.queries import parse_chatterbot_pairs

    from .fusion import chatterbot_dev

    pairs = [pair for _, text in datapkg.read_members(datapkg.CHATTERBOT, options.settings) for pair in parse_chatterbot_pairs(text)]
    dev = chatterbot_dev(pairs, None)
    corpus = Corpus("chatterbot-answers", docs=[SourceDoc(pid, text, "text", "") for pid, text in zip(dev.passage_ids, dev.passages)])
    return Task("chatterbot-dev", corpus, [(q, frozenset(rel)) for q, rel in zip(dev.queries, dev.relevant)])


TASKS: dict[str, Callable[[TaskOptions], Task]] = {"faq": faq_task, "postgres-identifiers": postgres_task, "chatterbot-dev": chatterbot_dev_task}


DEFAULT_TASKS = ("faq", "postgres-identifiers")  # chatterbot-dev is asked for by name (development data)


def parse_tasks(text: str | None) -> list[str]:
    """``"faq,postgres-identifiers"`` -> names; ValueError naming the known tasks for an unknown one."""
    names = [t.strip() for t in (text or ",".join(DEFAULT_TASKS)).split(",") if t.strip()]
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names:
        raise ValueError(f"unknown task(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(TASKS)}")
    return names


def build_tasks(names: Iterable[str], options: TaskOptions, limit: int | None = None) -> list[Task]:
    """The named tasks, each with at most ``limit`` queries (seeded sample, corpus unchanged)."""
    tasks = []
    for name in names:
        task = TASKS[name](options)
        task.queries = ds.sample(task.queries, limit, options.seed)
        tasks.append(task)
    return tasks


# --------------------------------------------------------------------------- measuring


def page_ranking(sources: Iterable[str], k: int = K) -> list[str]:
    """Chunk hits collapsed to their pages, first occurrence kept, at most k."""
    return list(dict.fromkeys(sources))[:k]


def temporary_store(settings: Settings, folder: Path) -> Settings:
    """``settings`` with an embedded Qdrant in ``folder`` (never a configured server)."""
    return settings.model_copy(update={"qdrant_path": folder / "qdrant", "qdrant_url": None, "qdrant_api_key": None})


def hits_or_none(client, encoder: Encoder, collection: str, query: str, k: int, mode: str) -> list:
    """The hits of one search; none for a query the mode cannot search (keyword mode and a query of stop words only)."""
    try:
        return search(client, encoder, collection, query, k, mode=mode, safety="off").hits
    except QueryError:
        return []


def run_task(
    task: Task, encoder: Encoder, chunks_per_query: int = CHUNKS_PER_QUERY, k: int = K, *, settings: Settings, idf_sources: Sequence[str] = (),
) -> dict[str, Any]:
    """Index ``task`` into a fresh embedded Qdrant, search every query in every mode, score the page rankings.

    ``idf_sources`` (default: the settings' ``keyword_idf``): with several, the task is indexed once per source
    and the keyword modes are reported per source (``sparse · collection idf``); dense is measured once."""
    if not task.queries:
        raise ValueError(f"task {task.name!r} has no queries")
    sources = list(idf_sources) or [settings.keyword_idf]
    out: dict[str, Any] = {"documents": len(task.corpus.docs), "queries": len(task.queries)}
    relevant = [rel for _, rel in task.queries]
    with tempfile.TemporaryDirectory(prefix="gensearch-search-modes-") as tmp:
        for i, source in enumerate(sources):
            store = temporary_store(settings, Path(tmp)).model_copy(update={"keyword_idf": source})
            collection = task.collection if len(sources) == 1 else f"{task.collection}-{source}"
            with connect(store) as client:
                log.info("%s: indexing %d documents (keyword idf: %s)", task.name, len(task.corpus.docs), source)
                started = time.perf_counter()
                report = index_corpus(client, encoder, task.corpus, collection, settings=store)
                out.setdefault("chunks", report.chunks)
                out.setdefault("index_seconds", round(time.perf_counter() - started, 1))
                for mode in MODES if i == 0 else [m for m in MODES if m != "dense"]:
                    label = mode if len(sources) == 1 or mode == "dense" else f"{mode} · {source} idf"
                    log.info("%s: %d queries, %s", task.name, len(task.queries), label)
                    started = time.perf_counter()
                    rankings = [page_ranking((h.source for h in hits_or_none(client, encoder, collection, q, chunks_per_query, mode)), k)
                                for q, _ in task.queries]
                    ms = 1000 * (time.perf_counter() - started) / len(task.queries)
                    metrics = retrieval_metrics(rankings, relevant, k=k)
                    out[label] = {**{name: round(v, 4) for name, v in metrics.items()}, "ms_per_query": round(ms, 1)}
    return out


def measured_modes(out: Mapping[str, Any]) -> list[str]:
    """The mode labels a task's result holds, in the order they were measured."""
    return [key for key, value in out.items() if isinstance(value, dict) and f"ndcg@{K}" in value]


def run_search_modes(
    tasks: Sequence[Task], encoder: Encoder, encoder_name: str, *, settings: Settings, chunks_per_query: int = CHUNKS_PER_QUERY, k: int = K,
    idf_sources: Sequence[str] = (),
) -> dict[str, Any]:
    """Every mode on every task: ``{"encoder", "cpu", "tasks": {name: run_task(...)}}``."""
    return {
        "encoder": encoder_name,
        "cpu": cpu_model(),
        "tasks": {task.name: run_task(task, encoder, chunks_per_query, k, settings=settings, idf_sources=idf_sources) for task in tasks},
    }


# --------------------------------------------------------------------------- report


def report_stem(encoder_name: str) -> str:
    """``eval_search_modes`` for the default encoder, ``eval_search_modes_<encoder>`` for another one."""
    if encoder_name == DEFAULT_ENCODER:
        return STEM
    return STEM + "_" + (re.sub(r"[^A-Za-z0-9._-]+", "-", Path(encoder_name).name).strip("-.") or "encoder")


def markdown(report: Mapping[str, Any]) -> str:
    """One table: a row per task and mode, the best nDCG@10 of each task in bold."""
    seconds = report.get("seconds")
    lines = [
        "# gensearch evaluation: dense / keyword (BM25) / hybrid search",
        "",
        " · ".join(x for x in (
            report.get("date", ""), f"`{report['command']}`" if report.get("command") else "",
            f"{seconds / 60:.1f} min" if isinstance(seconds, (int, float)) else "",
            f"{report.get('cpu', '?')}, torch threads {(report.get('machine') or {}).get('threads', '?')}",
            f"dense encoder {report.get('encoder', '?')}",
        ) if x),
        "",
        "Through `indexer.search.search` on an embedded Qdrant; chunk hits collapsed to pages.",
        "",
        f"| task | mode | nDCG@{K} | Recall@{K} | MRR@{K} | ms/query |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for task, out in report["tasks"].items():
        modes = measured_modes(out)
        best = max(out[mode][f"ndcg@{K}"] for mode in modes)
        label = f"{task} ({out['queries']} queries, {out['documents']} documents, {out['chunks']} chunks)"
        for i, mode in enumerate(modes):
            m = out[mode]
            ndcg = f"{m[f'ndcg@{K}']:.3f}"
            cells = [f"**{ndcg}**" if m[f"ndcg@{K}"] == best else ndcg, f"{m[f'recall@{K}']:.3f}", f"{m[f'mrr@{K}']:.3f}", f"{m['ms_per_query']:.1f}"]
            lines.append(f"| {label if i == 0 else ''} | {mode} | " + " | ".join(cells) + " |")
    lines += ["", "Indexing: " + ", ".join(f"{task} {out['index_seconds']} s" for task, out in report["tasks"].items()) + "."]
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out_dir: Path, stem: str = STEM) -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(markdown(report))
    return paths


def evaluate_search_modes(
    encoder_name: str = DEFAULT_ENCODER, tasks: str | None = None, *, gucs: int = GUCS, chunks_per_query: int = CHUNKS_PER_QUERY,
    limit: int | None = None, seed: int = 0, out_dir: Path | None = None, command: str = "gensearch eval search-modes",
    settings: Settings, encoder: Encoder | None = None, idf_sources: Sequence[str] = (),
) -> tuple[dict[str, Any], list[Path]]:
    """The whole part: build the tasks, load the encoder (unless given), measure, write the report."""
    import torch

    from encoder import load_encoder

    started = time.perf_counter()
    names = parse_tasks(tasks)
    built = build_tasks(names, TaskOptions(settings, gucs=gucs, seed=seed), limit)  # data errors before the model loads
    encoder = encoder or load_encoder(encoder_name, settings=settings)
    measured = run_search_modes(built, encoder, encoder_name, chunks_per_query=chunks_per_query, settings=settings, idf_sources=idf_sources)
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "seconds": round(time.perf_counter() - started, 1),
        "encoder": measured["encoder"],
        "cpu": measured["cpu"],
        "machine": {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "config": {"tasks": names, "gucs": gucs, "chunks_per_query": chunks_per_query, "k": K, "limit": limit, "seed": seed,
                   "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
                   "keyword_idf": list(idf_sources) or [settings.keyword_idf]},
        "tasks": measured["tasks"],
    }
    paths = write_report(report, Path(out_dir or settings.reports_dir), report_stem(encoder_name))
    log.info("search modes done in %.1f min -> %s", report["seconds"] / 60, paths[0])
    return report, paths
