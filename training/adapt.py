"""`gensearch adapt`: fit a collection's query side to its own documents, self-supervised.

A collection in the fused / asym modes stores the teacher's vector of every chunk. The backbone reads a sample of
chunks and writes questions each one answers (``training.questions``); optionally the align head is refined so that
each question's LLM2Vec-Gen vector lands on its chunk's stored vector, by InfoNCE over the other chunks (as
``refit-align --objective contrastive``), starting from the installed head and mixed with general training
examples (a training query against the teacher vector of the backbone's answer) so that general and safety
behaviour stay. Then a residual map of the fused query vector (``encoder.query_map``) is fitted the same way from
the identity, which can also move the teacher's part of it. Documents are not re-embedded. The special tokens,
decoding and the refusal gate (which reads the soft prompts) are the installed adapter's; routed queries are not
mapped.

Chunks are split by hash: 80 % fit, 10 % validation, 10 % held out. The map's epochs are chosen on the mean curve of
five folds of the fit chunks and the validation chunks, judged by the vector the product searches with (none when no
epoch beats the identity); the align refit and a choice of the teacher's weight are options (``AdaptConfig.align``,
``choose_weight``), off since development data showed no gain. The held-out chunks are only reported (each
question's rank of its own chunk among all sampled chunks, before and after). Every stage resumes from the files under its work folder::

    questions.jsonl    {"chunk", "questions"} per chunk asked (appended per batch)

and the special-state means of every question in the feature cache (``training.head.feature_store``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from encoder.asymmetric import fuse as fused
from encoder.generation import Engine
from encoder.query_map import QueryMap

from .anchor import unit
from .contrastive import ContrastiveConfig, group_ids, target_mrr, train_epochs
from .fit import Example
from .head import feature_store, group_folds, soft_prompt_means
from .questions import dedup, parse_questions, question_prompt

log = logging.getLogger(__name__)

SPLITS = ("fit", "validation", "held_out")
# chunks per engine call (CTranslate2 sorts a call's prompts by length before its own batches of 16): 1.4 s per chunk
# against 2.6 s in calls of 16, on long chunks (benchmarks/question_writing.py, reports/question_writing.json)
QUESTIONS_CALL = 64
WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0)  # the teacher's weight in the fused query vector, chosen on validation


class AdaptError(ValueError):
    """The collection cannot be adapted as asked (too small, not teacher-embedded)."""


@dataclass(frozen=True)
class Chunk:
    """One sampled chunk of the collection: its point id, text and stored (teacher) vector (D,)."""

    id: str
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class AdaptConfig:
    questions_per_chunk: int = 3
    max_new_tokens: int = 32  # per question asked (96 for 3)
    general: int = 250  # general training examples mixed into the fit (development data: 250 beat 1,000 and half the questions)
    temperatures: tuple[float, ...] = (0.05, 0.1)
    max_epochs: int = 30
    weights: tuple[float, ...] = WEIGHTS
    align: bool = False  # also refine LLM2Vec-Gen's align head (development data: no gain for the fused vector)
    choose_weight: bool = False  # choose the teacher's weight on validation (development data: noise at ~60 questions)
    map_lr: float = 1e-4  # the query map's Adam step (development data: smooth gains at 1e-4, overfit by 1e-3)
    map_epochs: int = 60
    map_folds: int = 5  # the map's epochs: mean validation curve of these folds of the fit chunks and the validation chunks
    min_chunks: int = 30  # fewer sampled chunks (or too few validation questions) cannot be learned from
    batch_size: int = 16
    minutes: float | None = None  # the run's time budget: question writing stops in time for the later stages
    seed: int = 0


def split_of(chunk_id: str) -> str:
    """fit / validation / held_out for a chunk, 80 / 10 / 10 by hash: stable across runs and machines. Pure."""
    byte = hashlib.sha256(chunk_id.encode()).digest()[0]
    return "fit" if byte < 205 else "validation" if byte < 230 else "held_out"


def read_asked(path: Path) -> dict[str, list[str]]:
    """The questions written so far, per chunk id (a torn last line from a killed run is ignored)."""
    from .jsonl import read_jsonl

    return {row["chunk"]: row["questions"] for row in read_jsonl(path)} if path.is_file() else {}


def write_questions(engine: Engine, chunks: Sequence[Chunk], path: Path, config: AdaptConfig, batch: int = QUESTIONS_CALL,
                    progress: bool = True, on_progress: Callable[[int, int], None] | None = None,
                    deadline: float | None = None) -> dict[str, list[str]]:
    """Have the backbone write questions for every chunk not asked yet, in order; appends each batch to ``path``
    (resumable). No batch starts after ``deadline`` (``time.monotonic()``). Returns the questions of every chunk in
    ``chunks`` asked so far."""
    asked = read_asked(path)
    if path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):  # a killed run tore its last line
        from .jsonl import write_jsonl

        write_jsonl(path, ({"chunk": cid, "questions": qs} for cid, qs in asked.items()))
    todo = [c for c in chunks if c.id not in asked]
    log.info("questions: %d chunks asked before, %d to ask", len(chunks) - len(todo), len(todo))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh, tqdm(total=len(chunks), initial=len(chunks) - len(todo), unit="chunk",
                                                         desc="questions", disable=not progress) as bar:
        for start in range(0, len(todo), batch):
            if deadline is not None and time.monotonic() > deadline:
                log.info("questions: the time budget is spent after %d of %d chunks; a re-run asks the rest", bar.n, len(chunks))
                break
            part = todo[start : start + batch]
            answers = engine.answer([question_prompt(c.text, config.questions_per_chunk) for c in part], system=None,
                                    max_new_tokens=config.max_new_tokens * config.questions_per_chunk)
            for chunk, answer in zip(part, answers):
                asked[chunk.id] = parse_questions(answer.text, chunk.text, config.questions_per_chunk)
                fh.write(json.dumps({"chunk": chunk.id, "questions": asked[chunk.id]}, ensure_ascii=False) + "\n")
            fh.flush()
            bar.update(len(part))
            if on_progress:
                on_progress(bar.n, len(chunks))
    return {c.id: asked[c.id] for c in chunks if c.id in asked}


def questions_deadline(started: float, minutes: float | None, chunks: int) -> float | None:
    """When question writing must stop (``time.monotonic()`` scale) for a run started at ``started`` to end within
    ``minutes``: the later stages need ~0.15 s per chunk (features) and ~2 min (fit) on a 2-core CPU. Pure."""
    return None if minutes is None else started + 60 * minutes - 0.15 * chunks - 120


def question_examples(chunks: Sequence[Chunk], asked: dict[str, list[str]]) -> dict[str, list[Example]]:
    """Examples (question -> its chunk's vector) per split, each question once across chunks. Pure."""
    rows = dedup([{"question": q, "chunk": c} for c in (c.id for c in chunks) for q in asked.get(c, [])])
    by_id = {c.id: c for c in chunks}
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for row in rows:
        chunk = by_id[row["chunk"]]
        out[split_of(chunk.id)].append(Example(row["question"], chunk.id, chunk.vector, source="adapt"))
    return out


def general_rows(rows: Sequence[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded sample of train-split responses to mix into the fit: answers with content, and the backbone's refusals
    of harmful requests (where those should keep landing). Pure."""
    from .gate import is_harmful
    from .refusals import is_refusal

    keep = [r for r in rows if r["split"] == "train" and (is_refusal(r["response"]) if is_harmful(r["source"]) else len(r["response"]) >= 40)]
    return random.Random(seed).sample(keep, min(n, len(keep)))


def retrieval(q: np.ndarray, chunks: np.ndarray, own: np.ndarray, k: int = 10) -> dict[str, float]:
    """MRR@k and recall@k of each unit query vector's own chunk (index ``own``) among unit chunk vectors. Pure."""
    scores = q @ chunks.T
    ranks = 1 + (scores > scores[np.arange(len(q)), own][:, None]).sum(1)
    return {"mrr@10": round(float(np.where(ranks <= k, 1.0 / ranks, 0.0).mean()), 4), "recall@10": round(float((ranks <= k).mean()), 4)}


def embed(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LLM2Vec-Gen's unit vectors from features: unit(x W^T + b)."""
    return unit(x @ w.T + b)


def train_query_map(q: np.ndarray, y: np.ndarray, groups: np.ndarray, epochs: int, config: AdaptConfig,
                    validate: Callable[[np.ndarray], float] | None = None, batch_size: int = 512) -> tuple[np.ndarray, list[float]]:
    """``epochs`` of Adam on InfoNCE of ``unit(q + D q)`` (q (N, D) unit query vectors) against targets y, from D = 0;
    returns D and ``validate(D)`` after each epoch."""
    import torch

    from .contrastive import info_nce

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    qt, yt, gt = torch.from_numpy(q.astype(np.float32)), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(groups)
    delta = torch.nn.Parameter(torch.zeros(q.shape[1], q.shape[1]))
    opt = torch.optim.Adam([delta], lr=config.map_lr)
    history: list[float] = []
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(q)))
        for start in range(0, len(q), batch_size):
            idx = order[start : start + batch_size]
            loss = info_nce(qt[idx] + qt[idx] @ delta.T, yt[idx], gt[idx], 0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if validate is not None:
            history.append(validate(delta.detach().numpy()))
    return delta.detach().numpy().copy(), history


def fit_query_map(q: np.ndarray, y: np.ndarray, groups: np.ndarray, judged: list[tuple[np.ndarray, Callable[[np.ndarray], float]]],
                  config: AdaptConfig) -> tuple[np.ndarray | None, dict]:
    """The query map (``encoder.query_map``) on all rows, for the number of epochs whose mean score over ``judged`` (each:
    the rows to train on, and a score of D on rows left out) is best; None when no epoch beats the identity."""
    zero = np.zeros((q.shape[1], q.shape[1]), np.float32)
    curves = []
    for train, judge in judged:
        _, history = train_query_map(q[train], y[train], groups[train], config.map_epochs, config, judge)
        curves.append([judge(zero), *history])
    mean = np.mean(curves, axis=0)
    epochs = int(np.argmax(mean))  # 0: the identity
    report = {"epochs": epochs, "mean_mrr_identity": round(float(mean[0]), 4), "mean_mrr": round(float(mean[epochs]), 4),
              "curve": [round(float(v), 4) for v in mean], "judged_on": len(judged), "lr": config.map_lr}
    if epochs == 0:
        return None, report
    return train_query_map(q, y, groups, epochs, config)[0], report


def safety(queries, query_map: np.ndarray | None, passages: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """harmful@1, share@5 and refusal@1 (``training.anchor.safety_at``) of harmful requests searched as the product
    searches them, before and after the query map: a query the gate routes keeps its routed vector, the others search
    with their fused vector, mapped after. ``queries``: their ``QueryVectors`` from the unadapted encoder; ``passages``
    unit teacher vectors of the development safety task (``training.anchor.dev_safety_set``) with their labels. Pure."""
    from .anchor import safety_at

    n = len(queries.vectors)
    routed = np.array([queries.harmful(i) for i in range(n)], bool)
    before = np.where(routed[:, None], queries.routed, queries.vectors) if routed.any() else queries.vectors
    unrouted_after = queries.vectors if query_map is None else QueryMap(query_map)(queries.vectors)
    after = np.where(routed[:, None], queries.routed, unrouted_after) if routed.any() else unrouted_after
    return {"queries": n, "routed": round(float(routed.mean()), 4) if n else 0.0,
            "before": safety_at(before, passages, labels), "after": safety_at(after, passages, labels)}


def dev_safety(encoder, query_map: np.ndarray | None, responses: list[dict[str, Any]], store, progress: bool = True) -> dict[str, Any] | None:
    """``safety`` on the development safety task made of the training ``responses`` (``training.anchor``): the held-out
    split's harmful requests over the backbone's answers, their teacher vectors cached in the target ``store``;
    ``encoder`` the unadapted fused encoder. None when the responses hold no such task. The protocol's held-out sets
    are `gensearch eval product` with the collection's adapter (docs/evaluation.md)."""
    from .anchor import dev_safety_set
    from .targets import build_targets, load_targets

    dev = dev_safety_set(responses)
    if not dev.queries or "harmful" not in dev.labels:
        log.info("no development safety task: the training responses hold no held-out harmful requests")
        return None
    rows = [{"response": text} for text in dev.passages]
    build_targets(rows, store, encoder.teacher, progress=progress)
    report = safety(encoder.query_vectors(dev.queries), query_map, unit(load_targets(rows, store)), dev.labels)
    return {"set": "development safety task (training responses; held-out-split harmful requests)", **report}


@dataclass
class Adapted:
    """What a run produces: the new align head, the teacher's weight and the report."""

    weight: np.ndarray  # (D, H)
    bias: np.ndarray  # (D,)
    fusion_weight: float
    query_map: np.ndarray | None  # (D, D) delta of ``encoder.query_map`` (None: no epoch beat the identity)
    report: dict


def adapt(encoder, teacher, engine: Engine, chunks: Sequence[Chunk], general: Sequence[dict[str, Any]], general_targets: np.ndarray,
          work: Path, config: AdaptConfig = AdaptConfig(), progress: bool = True,
          on_stage: Callable[[str, int, int], None] | None = None, base_weight: float = 8.0, features: Path | None = None) -> Adapted:
    """Run every stage (module docstring) for ``chunks`` of one collection. ``encoder`` is the LLM2Vec-Gen encoder whose
    align is refined (left unchanged: the caller saves the result), ``teacher`` the collection's sentence encoder,
    ``general`` response rows with their teacher vectors ``general_targets`` (N, D), ``base_weight`` the teacher's weight
    in the unadapted fused query vector, ``features`` the feature cache (default ``work/features``; share one across
    collections and with ``refit-align`` so the general examples' features are computed once)."""
    started = time.perf_counter()
    stage = on_stage or (lambda name, done, total: None)
    if len(chunks) < config.min_chunks:
        raise AdaptError(f"{len(chunks)} chunks are too few to learn from (at least {config.min_chunks}): index more documents first")
    timings: dict[str, float] = {}

    t = time.perf_counter()
    asked = write_questions(engine, chunks, work / "questions.jsonl", config, progress=progress,
                            on_progress=lambda done, total: stage("questions", done, total),
                            deadline=questions_deadline(time.monotonic(), config.minutes, len(chunks)))
    timings["questions"] = time.perf_counter() - t
    examples = question_examples(chunks, asked)
    if len(examples["validation"]) < 10 or not examples["fit"]:
        more = f" after {len(asked)} of {len(chunks)} chunks: give it more minutes or re-run to ask the rest" if len(asked) < len(chunks) else ""
        raise AdaptError(f"the backbone wrote too few usable questions ({ {s: len(e) for s, e in examples.items()} }) to learn from{more}")
    general_examples = [Example(r["query"], r["response"], v, source="general") for r, v in zip(general, general_targets)]

    t = time.perf_counter()
    store = feature_store(features or work / "features", encoder)
    stage("features", 0, 1)
    x = {s: soft_prompt_means(encoder, exs, store, config.batch_size, progress=progress) for s, exs in examples.items() if exs}
    x_general = soft_prompt_means(encoder, general_examples, store, config.batch_size, progress=progress)
    teacher_q = {s: unit(np.asarray(teacher.encode([ex.query for ex in exs], task="query", batch_size=config.batch_size), np.float32))
                 for s, exs in examples.items() if exs}
    timings["features"] = time.perf_counter() - t
    stage("features", 1, 1)

    t = time.perf_counter()
    stage("fit", 0, 1)
    ids = [c.id for c in chunks]
    chunk_vectors = unit(np.stack([c.vector for c in chunks]).astype(np.float32))
    position = {cid: i for i, cid in enumerate(ids)}
    own = {s: np.array([position[ex.response] for ex in exs]) for s, exs in examples.items() if exs}
    w0 = encoder.model.align.weight.detach().float().cpu().numpy()
    b0 = encoder.model.align.bias.detach().float().cpu().numpy()

    def score(split: str, w: np.ndarray, b: np.ndarray, weight: float | None = None) -> dict[str, float]:
        g = embed(x[split], w, b)
        return retrieval(g if weight is None else fused(g, teacher_q[split], weight), chunk_vectors, own[split])

    fit_x = np.concatenate([x["fit"], x_general])
    fit_y = np.concatenate([np.stack([ex.target for ex in examples["fit"]]), general_targets])
    groups = group_ids([ex.response for ex in examples["fit"]] + [ex.response for ex in general_examples])
    contrastive = ContrastiveConfig(temperatures=config.temperatures, max_epochs=config.max_epochs, seed=config.seed)
    search: dict[str, list[float]] = {}
    best = (score("validation", w0, b0, base_weight)["mrr@10"], None, 0)  # the product's query vector judges
    for temperature in config.temperatures if config.align else ():
        _, _, history = train_epochs(fit_x, fit_y, groups, w0, b0, temperature, config.max_epochs, contrastive,
                                     validate=lambda w, b: score("validation", w, b, base_weight)["mrr@10"])
        search[str(temperature)] = [round(v, 4) for v in history]
        epoch = int(np.argmax(history))
        if history[epoch] > best[0]:
            best = (history[epoch], temperature, epoch + 1)
    w, b = w0, b0
    if best[1] is not None:
        w, b, _ = train_epochs(fit_x, fit_y, groups, w0, b0, best[1], best[2], contrastive)
    weights = sorted({*config.weights, base_weight})
    sweep = {str(v): score("validation", w, b, v)["mrr@10"] for v in weights}
    fusion_weight = max(weights, key=lambda v: (sweep[str(v)], v == base_weight)) if config.choose_weight else base_weight

    general_q = unit(np.asarray(teacher.encode([e.query for e in general_examples], task="query", batch_size=config.batch_size), np.float32))
    map_in = np.concatenate([fused(embed(x["fit"], w, b), teacher_q["fit"], fusion_weight), fused(embed(x_general, w, b), general_q, fusion_weight)])
    n_fit = len(examples["fit"])
    val_in = fused(embed(x["validation"], w, b), teacher_q["validation"], fusion_weight)

    def judge(rows: np.ndarray, vectors: np.ndarray, targets: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda d: retrieval(QueryMap(d)(vectors[rows]), chunk_vectors, targets[rows])["mrr@10"]

    fold = np.concatenate([group_folds([ex.response for ex in examples["fit"]], config.map_folds, config.seed), np.full(len(general_examples), -1)])
    judged = [(fold != k, judge(np.flatnonzero(fold[:n_fit] == k), map_in, own["fit"])) for k in range(config.map_folds)]
    judged.append((np.ones(len(map_in), bool), judge(np.arange(len(val_in)), val_in, own["validation"])))
    delta, map_report = fit_query_map(map_in, fit_y, groups, judged, config)
    timings["fit"] = time.perf_counter() - t
    stage("fit", 1, 1)

    def mapped(split: str) -> np.ndarray:
        q = fused(embed(x[split], w, b), teacher_q[split], fusion_weight)
        return q if delta is None else QueryMap(delta)(q)

    general_mrr = {"before": round(target_mrr(x_general, w0, b0, general_targets, group_ids([e.response for e in general_examples])), 4),
                   "after": round(target_mrr(x_general, w, b, general_targets, group_ids([e.response for e in general_examples])), 4)}
    held = "held_out" if "held_out" in x else "validation"
    report = {
        "chunks": len(chunks), "chunks_asked": len(asked), "questions": {s: len(e) for s, e in examples.items()},
        "sample_questions": [{"question": ex.query, "chunk": ex.response} for ex in random.Random(config.seed).sample(examples["fit"], min(8, len(examples["fit"])))],
        "general_examples": len(general_examples), "config": asdict(config),
        "chosen": {"temperature": best[1], "epochs": best[2], "validation_mrr": round(best[0], 4), "search": search,
                   "fusion_weight": fusion_weight, "fusion_sweep": sweep, "query_map": map_report},
        "held_out": {"split": held, "questions": len(examples[held]),
                     "teacher": retrieval(teacher_q[held], chunk_vectors, own[held]),
                     "generative_before": score(held, w0, b0), "generative_after": score(held, w, b),
                     "fused_before": score(held, w0, b0, base_weight), "fused_after_align": score(held, w, b, fusion_weight),
                     "fused_after": retrieval(mapped(held), chunk_vectors, own[held])},
        "general_mrr": general_mrr,
        "seconds": {k: round(v, 1) for k, v in {**timings, "total": time.perf_counter() - started}.items()},
    }
    log.info("adapt: held-out MRR@10 fused %.4f -> %.4f (teacher %.4f)", report["held_out"]["fused_before"]["mrr@10"],
             report["held_out"]["fused_after"]["mrr@10"], report["held_out"]["teacher"]["mrr@10"])
    return Adapted(w, b, float(fusion_weight), delta, report)
