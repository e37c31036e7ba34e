"""`gensearch eval adapt`: does adapting a collection to its own documents help real questions it never saw?

For each task of ``eval search-modes`` (the Python FAQ; PostgreSQL parameter and catalog questions), through the
product's search path and read mode (``indexer.search.search``, ``Settings.search_mode``, safety as configured):

1. index the corpus with the default encoder (fused: teacher-embedded documents) and with the teacher, into an
   embedded store under ``<run_dir>/eval-adapt/`` (kept, so a killed run re-indexes nothing and the adaptation
   resumes from its work files);
2. search the task's real questions with the unadapted default and with the teacher;
3. adapt the fused collection (``app``-level ``adapt_collection`` is injected: the evaluation layer does not import
   the app), which writes questions about the collection's own chunks only — never the task's questions;
4. search again with the adapter the collection now records (``indexer.identity.load_encoder_for``).

Pages are ranked as ``search-modes`` ranks them (chunk hits collapsed to their page). Report:
``reports/eval_adapt.json`` and ``.md``.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from encoder import Encoder, load_encoder
from encoder.device import cpu_model
from encoder.settings import Settings
from indexer.identity import load_encoder_for
from indexer.pipeline import index_corpus
from indexer.search import search
from indexer.store import collection_identity, connect

from .metrics import retrieval_metrics
from .search_modes import CHUNKS_PER_QUERY, K, Task, TaskOptions, build_tasks, page_ranking, temporary_store

log = logging.getLogger(__name__)

STEM = "eval_adapt"
Adapt = Callable[[Settings, str, int], dict]  # (settings, collection, max_chunks) -> the adapt report


def ranked(settings: Settings, encoder: Encoder, collection: str, task: Task) -> dict[str, float]:
    """nDCG@10, recall@10 and MRR@10 of ``task``'s queries on ``collection``, searched as the product searches."""
    started = time.perf_counter()
    with connect(settings) as client:
        rankings = [page_ranking((h.source for h in search(client, encoder, collection, q, CHUNKS_PER_QUERY, mode=settings.search_mode,
                                                           safety=settings.safety).hits), K) for q, _ in task.queries]
    metrics = retrieval_metrics(rankings, [rel for _, rel in task.queries], k=K)
    return {**{k: round(v, 4) for k, v in metrics.items()}, "ms_per_query": round(1000 * (time.perf_counter() - started) / len(task.queries), 1)}


def run_adapt_task(task: Task, settings: Settings, adapt: Adapt, max_chunks: int, default: Encoder, teacher: Encoder) -> dict[str, Any]:
    """Steps 1-4 of the module docstring for one task, with the unadapted ``default`` encoder and the ``teacher``."""
    fused_name, teacher_name = f"{task.collection}_fused", f"{task.collection}_teacher"
    with connect(settings) as client:
        index = {name: index_corpus(client, enc, task.corpus, name, settings=settings).chunks for name, enc in ((fused_name, default), (teacher_name, teacher))}
        adapted_before = collection_identity(client, fused_name).adapter_path
    if adapted_before:
        raise RuntimeError(f"{fused_name} in {settings.qdrant_path} is already adapted: delete that store to measure from the start")
    out: dict[str, Any] = {"documents": len(task.corpus.docs), "queries": len(task.queries), "chunks": index[fused_name]}
    out["teacher"] = ranked(settings, teacher, teacher_name, task)
    out["before"] = ranked(settings, default, fused_name, task)
    started = time.perf_counter()
    report = adapt(settings, fused_name, max_chunks)
    out["adapt_seconds"] = round(time.perf_counter() - started, 1)
    with connect(settings) as client:
        adapted = load_encoder_for(collection_identity(client, fused_name), settings)
    out["after"] = ranked(settings, adapted, fused_name, task)
    out["adapt"] = {k: report.get(k) for k in ("chunks", "questions", "sample_questions", "held_out", "safety", "chosen", "seconds", "adapter")}
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = ["### gensearch evaluation: adapting a collection to its documents", "",
             f"{report['date']} · `{report['command']}` · {report['seconds'] / 60:.1f} min on {report['cpu']} · read mode {report['search_mode']}", "",
             f"| task | queries | chunks | teacher nDCG@{K} | default nDCG@{K} | adapted nDCG@{K} | Δ | adapt (min) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, t in report["tasks"].items():
        delta = t["after"][f"ndcg@{K}"] - t["before"][f"ndcg@{K}"]
        lines.append(f"| {name} | {t['queries']} | {t['chunks']} | {t['teacher'][f'ndcg@{K}']:.3f} | {t['before'][f'ndcg@{K}']:.3f} | "
                     f"{t['after'][f'ndcg@{K}']:.3f} | {delta:+.3f} | {t['adapt_seconds'] / 60:.1f} |")
    return "\n".join(lines) + "\n"


def evaluate_adapt(settings: Settings, adapt: Adapt, tasks: Sequence[str] = ("faq", "postgres-identifiers"), max_chunks: int = 1000,
                   out_dir: Path | None = None, command: str = "gensearch eval adapt") -> tuple[dict[str, Any], list[Path]]:
    """Every task, then the report (module docstring)."""
    started = time.perf_counter()
    store = temporary_store(settings, settings.run_dir / "eval-adapt")
    built = build_tasks(tasks, TaskOptions(settings))
    default, teacher = load_encoder("llm2vec-gen-fused", settings=settings), load_encoder("teacher", settings=settings)
    report: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "command": command,
                              "cpu": cpu_model(), "search_mode": settings.search_mode, "max_chunks": max_chunks,
                              "tasks": {task.name: run_adapt_task(task, store, adapt, max_chunks, default, teacher) for task in built}}
    report["seconds"] = round(time.perf_counter() - started, 1)
    out_dir = out_dir or settings.reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{STEM}.json", out_dir / f"{STEM}.md"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(markdown(report))
    return report, paths
