"""One evaluation run: every selected system on every selected task, in one process, side by side.

Order of work: load the data (FAQ, labelled safety passages, AdvBench), refuse to run if any evaluation
query is a training query, load the systems (one shared backbone), then per system: embed the corpus once
(the FAQ-only corpus is a subset of the mixed one; teacher and HyDE share document vectors), embed the
queries, rank by exact cosine, score; for LLM2Vec-Gen also the encode overhead and decodability. The work runs
in two phases, the systems that generate (HyDE) last (``speed.phases``); each phase starts by timing single
queries, its systems taking turns query by query (``speed.query_latencies``). Writes
``<out_dir>/<stem>.json|.md|_*.png|_examples.json`` (``eval`` for all parts).
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoder.device import cpu_has_fast_bf16, cpu_model
from encoder.settings import Settings
from training.jsonl import read_jsonl

from . import datasets as ds
from .decodability import decodability, heldout_rows
from .goals import check_goals
from .metrics import retrieval_metrics, safety_metrics
from .report import write_report
from .search import top_k
from .speed import encode_overhead, phases, query_latencies, throughput, timed
from .systems import SYSTEMS, HydeSystem, Loaded, System, load_systems

log = logging.getLogger(__name__)

PARTS = ("retrieval", "safety", "speed", "decodability")
SAFETY_KS = (1, 5, 20)
RETRIEVAL_K = 10
SNIPPET = 300


class EvalError(RuntimeError):
    """The evaluation cannot run as asked (missing data, evaluation queries found in the training set, ...)."""


@dataclass
class EvalConfig:
    """What to run; ``quick()`` gives the small CI configuration."""

    parts: tuple[str, ...] = PARTS
    systems: tuple[str, ...] = SYSTEMS
    limit: int | None = None  # queries per task (seeded sample); None: all
    corpus_per_label: int | None = None  # None: the whole corpus; else relevant passages + this many per label
    max_words: int = ds.MAX_WORDS
    hyde_tokens: int = 128  # the training responses' budget on CPU: HyDE generates what LLM2Vec-Gen learned to embed
    hyde_system: str | None = None  # None: the training responses' system prompt
    decode_tokens: int = 64
    decode_queries: int = 64
    latency_queries: int = 10
    overhead_texts: int = 32
    examples: int = 10
    backbone: str | None = None
    adapter: Path | None = None
    seed: int = 0
    out_dir: Path | None = None  # default: settings.reports_dir
    command: str = "gensearch eval all"
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides: Any) -> EvalConfig:
        """Small subset for CI: checks the pipeline end to end; the numbers are not meaningful."""
        base = dict(
            limit=10, corpus_per_label=10, max_words=64, hyde_tokens=16, decode_tokens=16, decode_queries=4,
            latency_queries=2, overhead_texts=4, examples=3, quick=True,
        )
        return cls(**{**base, **{k: v for k, v in overrides.items() if v is not None}})

    def stem(self) -> str:
        return "eval" if set(self.parts) == set(PARTS) else "eval_" + "_".join(p for p in PARTS if p in self.parts)


@dataclass
class EvalData:
    faq_queries: list[ds.Query] = field(default_factory=list)
    safety_queries: list[ds.Query] = field(default_factory=list)
    corpus: list[ds.Passage] = field(default_factory=list)  # FAQ answers first, then safety passages

    @property
    def faq_rows(self) -> np.ndarray:
        """Row indices of the FAQ answers in ``corpus``."""
        return np.array([i for i, p in enumerate(self.corpus) if p.source.startswith("python-docs/")], dtype=int)

    def summary(self) -> dict[str, Any]:
        labels = {label: sum(p.label == label for p in self.corpus) for label in ds.LABELS}
        return {
            "faq_queries": len(self.faq_queries),
            "faq_passages": len(self.faq_rows),
            "safety_queries": len(self.safety_queries),
            "mixed_passages": len(self.corpus),
            "labels": labels,
        }


def load_data(config: EvalConfig, settings: Settings) -> EvalData:
    """The queries and corpus the selected parts need, subsampled as configured."""
    data = EvalData()
    needs_corpus = {"retrieval", "safety"} & set(config.parts)
    if needs_corpus or "speed" in config.parts:
        faq_queries, faq_passages = ds.faq_dataset(settings, config.max_words)
        data.faq_queries = ds.sample(faq_queries, config.limit, config.seed)
        data.corpus = faq_passages
    if "safety" in config.parts:
        data.safety_queries = ds.sample(ds.advbench_queries(settings), config.limit, config.seed)
        data.corpus = data.corpus + ds.safety_passages(settings, config.max_words)
    if config.corpus_per_label is not None:
        keep = {pid for q in data.faq_queries for pid in q.relevant}
        data.corpus = ds.subsample_corpus(data.corpus, keep, config.corpus_per_label, config.seed)
    return data


def check_not_trained_on(data: EvalData, settings: Settings) -> None:
    """EvalError if any evaluation query is in the training query file (when one exists)."""
    path = settings.run_dir / "queries.jsonl"
    if not path.is_file():
        return
    leaked = ds.check_disjoint([*data.faq_queries, *data.safety_queries], read_jsonl(path))
    if leaked:
        raise EvalError(f"{len(leaked)} evaluation queries are training queries in {path} (e.g. {leaked[0]!r}); rebuild it with `gensearch train prepare`")


def rank_ids(query_vecs: np.ndarray, doc_vecs: np.ndarray, ids: list[str], k: int) -> list[list[str]]:
    """Top-k passage ids per query by exact cosine."""
    return [[ids[j] for j in row] for row in top_k(query_vecs, doc_vecs, k)]


def snippet(p: ds.Passage) -> dict[str, str]:
    return {"id": p.id, "label": p.label, "source": p.source, "text": p.text[:SNIPPET]}


class Evaluation:
    """The state of one run: data, systems, document vectors shared by ``doc_key``, results."""

    def __init__(self, config: EvalConfig, data: EvalData, loaded: Loaded, settings: Settings):
        self.config, self.data, self.loaded, self.settings = config, data, loaded, settings
        self.doc_vectors: dict[str, tuple[np.ndarray, float]] = {}
        self.examples: dict[str, Any] = {"safety": [{"query": q.text, "systems": {}} for q in data.safety_queries[: config.examples]]}
        self.notes: list[str] = []

    def documents(self, system: System) -> tuple[np.ndarray, float]:
        """Corpus vectors and the seconds they took (computed once per ``doc_key``)."""
        if system.doc_key not in self.doc_vectors:
            log.info("%s: embedding %d passages", system.name, len(self.data.corpus))
            vectors, seconds = timed(lambda: system.encode_documents([p.text for p in self.data.corpus]))
            self.doc_vectors[system.doc_key] = (vectors, seconds)
        return self.doc_vectors[system.doc_key]

    def evaluate(self, system: System) -> dict[str, Any]:
        """Every selected part for one system."""
        parts = set(self.config.parts)
        result: dict[str, Any] = {"info": system.describe()}
        speed: dict[str, Any] = {}
        if {"retrieval", "safety"} & parts:
            result.update(self.rank_and_score(system, speed))
        if "speed" in parts:
            speed.update(self.time_system(system, measure_docs="encode_docs_per_s" not in speed))
        if speed:
            result["speed"] = speed
        if "decodability" in parts and system.name == "llm2vec-gen":
            result["decodability"] = self.decodability()
        return result

    def rank_and_score(self, system: System, speed: dict[str, Any]) -> dict[str, Any]:
        """Retrieval (FAQ corpus, and mixed corpus with safety) and safety metrics; fills batched throughputs."""
        data, parts, out = self.data, self.config.parts, {}
        docs, doc_seconds = self.documents(system)
        ids = [p.id for p in data.corpus]
        faq_vecs, q_seconds = timed(lambda: system.encode_queries([q.text for q in data.faq_queries]))
        relevant, n_queries = [q.relevant for q in data.faq_queries], len(data.faq_queries)
        if "retrieval" in parts:
            rows = data.faq_rows
            out["retrieval"] = retrieval_metrics(rank_ids(faq_vecs, docs[rows], [ids[i] for i in rows], RETRIEVAL_K), relevant, RETRIEVAL_K)
        if "safety" in parts:
            out["retrieval_mixed"] = retrieval_metrics(rank_ids(faq_vecs, docs, ids, RETRIEVAL_K), relevant, RETRIEVAL_K)
            adv_vecs, adv_seconds = timed(lambda: system.encode_queries([q.text for q in data.safety_queries]))
            q_seconds, n_queries = q_seconds + adv_seconds, n_queries + len(data.safety_queries)
            by_id = {p.id: p for p in data.corpus}
            ranked = rank_ids(adv_vecs, docs, ids, max(SAFETY_KS))
            out["safety"] = safety_metrics([[by_id[i].label for i in row] for row in ranked], SAFETY_KS)
            for example, row in zip(self.examples["safety"], ranked):
                example["systems"][system.name] = [snippet(by_id[i]) for i in row[:5]]
            if isinstance(system, HydeSystem):
                pairs = zip(data.safety_queries[: self.config.examples], system.last_hypotheticals)
                self.examples["hyde"] = [{"query": q.text, "hypothetical": h} for q, h in pairs]
        speed.update(
            encode_docs_per_s=throughput(len(data.corpus), doc_seconds), encode_seconds=doc_seconds, queries_per_s=throughput(n_queries, q_seconds)
        )
        return out

    def time_system(self, system: System, measure_docs: bool) -> dict[str, Any]:
        """Document throughput on a small sample if no corpus was embedded; encode overhead (latency: ``latencies``)."""
        speed: dict[str, Any] = {}
        texts = [p.text for p in self.data.corpus[: self.config.overhead_texts]]
        if measure_docs:
            _, seconds = timed(lambda: system.encode_documents(texts))
            speed.update(encode_docs_per_s=throughput(len(texts), seconds), encode_seconds=seconds)
        if system.name == "llm2vec-gen":
            speed.update(encode_overhead(self.loaded.llm, texts, self.settings.batch_size))
        return speed

    def latencies(self, systems: list[System]) -> dict[str, dict[str, float]]:
        """Single-query latency of ``systems``, measured side by side (``speed.query_latencies``)."""
        log.info("timing %d single queries per system, %s taking turns", self.config.latency_queries, ", ".join(s.name for s in systems))
        return query_latencies(systems, [q.text for q in self.data.faq_queries[: self.config.latency_queries]])

    def decodability(self) -> dict[str, Any]:
        path = self.settings.run_dir / "responses.jsonl"
        if not path.is_file():  # a fresh machine: the committed responses of the backbone
            from training.generate import shipped_responses

            path = shipped_responses(self.loaded.llm.backbone.name)
        rows = heldout_rows(path, self.config.decode_queries, self.config.seed)
        if not rows:
            message = f"decodability skipped: no held-out responses in {path} (run `gensearch train generate` first)"
            log.warning(message)
            self.notes.append(message)
            return {"skipped": message}
        metrics, examples = decodability(self.loaded.llm, self.loaded.teacher, rows, self.config.decode_tokens)
        self.examples["decodability"] = examples[: self.config.examples]
        return metrics


def headline(systems: dict[str, dict[str, Any]], default_encoder: str | None = None) -> dict[str, Any]:
    """The ratios the project's claims rest on, as numbers and as sentences (``default_encoder``: the product's
    ``settings.encoder``, whose query latency is compared with HyDE's too)."""
    out: dict[str, Any] = {"text": []}
    get = lambda name, section, key: ((systems.get(name) or {}).get(section) or {}).get(key)  # noqa: E731
    hyde = get("hyde", "speed", "query_ms")
    latencies = [("llm2vec-gen", "hyde_over_llm2vec_gen_query_latency", "LLM2Vec-Gen")]
    if default_encoder not in (None, "llm2vec-gen"):
        latencies.append((default_encoder, "hyde_over_default_query_latency", f"{default_encoder} (the default encoder)"))
    for name, key, label in latencies:
        ours = get(name, "speed", "query_ms")
        if ours and hyde:
            out[key] = hyde / ours
            out["text"].append(f"Query latency: {label} {ours:,.1f} ms vs HyDE {hyde:,.1f} ms — HyDE is {hyde / ours:,.1f}× slower (goal ≥ 20×).")
    ratio = get("llm2vec-gen", "speed", "encode_overhead_ratio")
    if ratio:
        out["encode_overhead_ratio"] = ratio
        out["text"].append(f"encode() throughput is {ratio:.2f}× a bare backbone forward pass on the same tokens (1.0 = no overhead).")
    for section, key, label in (("retrieval", "ndcg@10", "FAQ nDCG@10"), ("safety", "harmful@5", "harmful@5 (lower is safer)")):
        values = {n: get(n, section, key) for n in systems if get(n, section, key) is not None}
        if values:
            out["text"].append(f"{label}: " + ", ".join(f"{n} {v:.3f}" for n, v in values.items()) + ".")
    dec = (systems.get("llm2vec-gen") or {}).get("decodability") or {}
    if "teacher_cosine" in dec:
        out["text"].append(
            f"Decodability: teacher cosine of decoded query embedding vs real response {dec['teacher_cosine']:.3f} "
            f"(query text itself: {dec['query_teacher_cosine']:.3f}; n = {dec['n']})."
        )
    return out


def run_eval(config: EvalConfig, settings: Settings) -> tuple[dict[str, Any], list[Path]]:
    """Run the configured evaluation and write its report; returns (report, written paths)."""
    unknown = set(config.parts) - set(PARTS)
    if unknown or not config.parts:
        raise EvalError(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    started = time.perf_counter()
    data = load_data(config, settings)
    check_not_trained_on(data, settings)
    loaded = load_systems(
        list(config.systems), backbone=config.backbone, adapter=config.adapter, hyde_tokens=config.hyde_tokens,
        hyde_system=config.hyde_system, need_teacher="decodability" in config.parts, settings=settings,
    )
    if "decodability" in config.parts and loaded.llm is None:
        raise EvalError("decodability needs the llm2vec-gen system (add it to --systems)")
    evaluation = Evaluation(config, data, loaded, settings)
    results: dict[str, Any] = {}
    for phase in phases(loaded.systems):  # those that generate last: they slow torch down for the rest of the process
        latencies = evaluation.latencies(phase) if "speed" in config.parts else {}
        for system in phase:
            log.info("evaluating %s", system.name)
            results[system.name] = evaluation.evaluate(system)
            if system.name in latencies:
                results[system.name]["speed"] = {**latencies[system.name], **results[system.name].get("speed", {})}
    systems = {system.name: results[system.name] for system in loaded.systems}
    if loaded.llm is not None and not loaded.adapter_trained:
        evaluation.notes.insert(0, f"LLM2Vec-Gen ran an UNTRAINED adapter on {loaded.llm.backbone.name}: its numbers are a floor, not the method's.")
    if config.quick:
        evaluation.notes.insert(0, "Quick mode (tiny subset): checks that the pipeline runs; the numbers are not meaningful.")
    report = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": config.command,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "cpu": cpu_model(), "fast_bf16": cpu_has_fast_bf16(),
            "platform": platform.platform(), "torch": torch.__version__, **loaded.info,
        },
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(replace(config, out_dir=None)).items() if k != "command"},
        "data": data.summary(),
        "headline": headline(systems, settings.encoder),
        "default_encoder": settings.encoder,
        "goals": check_goals(systems, settings.encoder),
        "notes": evaluation.notes,
        "systems": systems,
    }
    out_dir = Path(config.out_dir or settings.reports_dir)
    paths = write_report(report, out_dir, config.stem(), evaluation.examples)
    log.info("evaluation done in %.1f min -> %s", report["seconds"] / 60, out_dir)
    return report, paths
