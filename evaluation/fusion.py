"""`gensearch eval fusion`: the teacher's weight in the fused query vector, swept on development sets.

``llm2vec-gen-fused`` embeds a query as ``unit(w teacher(q) + LLM2Vec-Gen(q))`` (``encoder.asymmetric.fuse``).
Choosing ``w`` on the evaluation would make the evaluation a training set, so the sweep runs on two
development sets drawn from the *training* sources (``shared/SOURCES.md``), never from the evaluation's:

    chatterbot-answers   chatterbot-corpus questions -> the corpus's own human-written answers (every distinct
                         answer is a passage). The answers are never training targets. ``heldout``: only the
                         questions of the held-out split; ``all``: every question (the adapter was trained on
                         the train split's questions, towards the backbone's answers, not these)
    heldout-responses    held-out training queries -> the backbone's own responses (the committed file),
                         among ``distractors`` train-split responses: what the adapter is trained to predict

Each reports nDCG@10, recall@10 and MRR@10 per weight, with the teacher alone (``w = inf``) and
LLM2Vec-Gen alone (``w = 0``, the asym mode) as the two ends. Every text is encoded once; the weights
only recombine vectors.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from encoder.asymmetric import AsymmetricEncoder, fuse
from encoder.device import cpu_has_fast_bf16, cpu_model
from encoder.settings import Settings
from indexer.identity import adapter_digest
from training import datapkg
from training.generate import shipped_responses
from training.jsonl import read_jsonl
from training.queries import assign_split, normalise, parse_chatterbot_pairs, query_id
from training.targets import response_text

from .metrics import retrieval_metrics
from .search import top_k

log = logging.getLogger(__name__)

WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0, math.inf)
MIN_WORDS = 8  # a response shorter than this is no passage (one-word evals answers)


@dataclass
class DevSet:
    """Queries with their relevant passage ids, and the passages."""

    name: str
    queries: list[str]
    relevant: list[set[str]]
    passage_ids: list[str]
    passages: list[str]


SPLIT_SEED, HELDOUT_FRACTION = 0, 0.05  # `gensearch train prepare`'s defaults: the split the shipped adapter was trained on


def chatterbot_dev(
    pairs: list[tuple[str, str]], split: str | None, split_seed: int = SPLIT_SEED, heldout_fraction: float = HELDOUT_FRACTION
) -> DevSet:
    """Distinct questions (of ``split``, or all for None) -> their distinct answers, over every answer of the corpus."""
    ids: dict[str, str] = {}
    passages: list[str] = []
    relevant: dict[str, set[str]] = defaultdict(set)
    text: dict[str, str] = {}
    for question, answer in pairs:
        key = normalise(answer)
        if key not in ids:
            ids[key] = f"chatterbot/{len(ids)}"
            passages.append(answer)
        relevant[normalise(question)].add(ids[key])
        text.setdefault(normalise(question), question)
    keys = [k for k in relevant if split is None or assign_split(query_id(text[k]), split_seed, heldout_fraction) == split]
    name = f"chatterbot-answers ({split or 'all'})"
    return DevSet(name, [text[k] for k in keys], [relevant[k] for k in keys], list(ids.values()), passages)


def responses_dev(rows: list[dict[str, Any]], distractors: int = 1500, seed: int = 0, min_words: int = MIN_WORDS) -> DevSet:
    """Held-out queries -> their own response, among the held-out responses and ``distractors`` train-split ones.

    Identical responses (a stock refusal) are one passage, relevant to every query that got it."""
    usable = [r for r in rows if len(response_text(r).split()) >= min_words]
    held = [r for r in usable if r["split"] == "heldout"]
    train = [r for r in usable if r["split"] == "train"]
    ids: dict[str, str] = {}
    passages: list[str] = []
    for row in held + random.Random(seed).sample(train, min(distractors, len(train))):
        if (key := normalise(response_text(row))) not in ids:
            ids[key] = row["id"]
            passages.append(response_text(row))
    relevant = [{ids[normalise(response_text(r))]} for r in held]
    return DevSet("heldout-responses", [r["query"] for r in held], relevant, list(ids.values()), passages)


def load_dev_sets(settings: Settings, generator: str, distractors: int = 1500, seed: int = 0) -> list[DevSet]:
    """The development sets from the training sources (chatterbot-corpus; the committed responses of ``generator``)."""
    pairs = [pair for _, text in datapkg.read_members(datapkg.CHATTERBOT, settings) for pair in parse_chatterbot_pairs(text)]
    sets = [chatterbot_dev(pairs, "heldout"), chatterbot_dev(pairs, None)]
    path = shipped_responses(generator)
    if path.is_file():
        sets.append(responses_dev(list(read_jsonl(path)), distractors, seed))
    else:
        log.warning("no committed responses of %s at %s: heldout-responses skipped", generator, path)
    return sets


def sweep(
    fused: AsymmetricEncoder, dev: DevSet, weights: tuple[float, ...] = WEIGHTS, k: int = 10, documents: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
    """Retrieval metrics on ``dev`` per teacher weight (``"inf"``: the teacher alone); ``documents``: the passages'
    teacher vectors if already encoded."""
    docs = documents if documents is not None else encode_passages(fused, dev)
    teacher = fused.teacher.encode(dev.queries, task="query", show_progress_bar=False)
    generative = fused.generative.encode(dev.queries, task="query", show_progress_bar=len(dev.queries) > 64)
    out = {}
    for w in weights:
        queries = teacher if math.isinf(w) else fuse(generative, teacher, w)
        ranked = [[dev.passage_ids[j] for j in row] for row in top_k(queries, docs, k)]
        out[f"{w:g}"] = {name: round(value, 4) for name, value in retrieval_metrics(ranked, dev.relevant, k).items()}
    return out


def encode_passages(fused: AsymmetricEncoder, dev: DevSet) -> np.ndarray:
    """The teacher's vectors of ``dev``'s passages (what the fused mode retrieves against)."""
    return fused.teacher.encode(dev.passages, task="document", show_progress_bar=len(dev.passages) > 64)


def run_fusion(fused: AsymmetricEncoder, settings: Settings, weights: tuple[float, ...] = WEIGHTS, distractors: int = 1500, seed: int = 0) -> dict[str, Any]:
    """The sweep on every development set, with what the report needs to be reproduced."""
    started = time.perf_counter()
    report: dict[str, Any] = {
        "adapter": adapter_digest(fused.generative),
        "align_refit": fused.generative.config.training.get("align_refit", {}),
        "weights": [f"{w:g}" for w in weights],
        "distractors": distractors,
        "seed": seed,
        "split_seed": SPLIT_SEED,
        "backbone": fused.generative.backbone.name,
        "teacher": fused.teacher.name,
        "cpu": cpu_model(),
        "fast_bf16": cpu_has_fast_bf16(),
        "sets": {},
    }
    encoded: dict[tuple[str, ...], np.ndarray] = {}  # the chatterbot sets share their passages: embed them once
    for dev in load_dev_sets(settings, fused.generative.backbone.name, distractors, seed):
        log.info("%s: %d queries over %d passages", dev.name, len(dev.queries), len(dev.passages))
        key = tuple(dev.passage_ids)
        if key not in encoded:
            encoded[key] = encode_passages(fused, dev)
        metrics = sweep(fused, dev, weights, documents=encoded[key])
        finite = [w for w in metrics if w != "inf"]
        best = max(finite, key=lambda w: metrics[w]["ndcg@10"]) if finite else None
        report["sets"][dev.name] = {"queries": len(dev.queries), "passages": len(dev.passages), "best_weight": best, "weights": metrics}
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def markdown(report: dict[str, Any]) -> str:
    """One table per development set: nDCG@10 / recall@10 / MRR@10 per weight."""
    lines = [f"# Teacher weight in llm2vec-gen-fused ({report['backbone']} + {report['teacher']})", ""]
    for name, result in report["sets"].items():
        lines += [f"## {name}: {result['queries']} queries, {result['passages']} passages; best finite w = {result['best_weight']}", ""]
        lines += ["| w | nDCG@10 | recall@10 | MRR@10 |", "|---:|---:|---:|---:|"]
        for w, m in result["weights"].items():
            label = {"0": "0 (LLM2Vec-Gen alone)", "inf": "inf (teacher alone)"}.get(w, w)
            lines.append(f"| {label} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['mrr@10']:.4f} |")
        lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """``eval_fusion.json`` and ``eval_fusion.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "eval_fusion.json", out_dir / "eval_fusion.md"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report) + "\n")
    return paths
