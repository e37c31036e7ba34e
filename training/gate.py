"""Train the refusal gate (``encoder.gate``): a linear probe on the mean soft prompt of each training query.

Labels come from where a query comes from, not from whether the backbone refused it: the harmful-request
families of PyRIT (``pyrit/many_shot``, ``pyrit/objective``, ``pyrit/airt``) are positives, chatterbot and
OpenAI-evals queries negatives, *including* those the backbone declines ("What is this FAQ?"), and so are the
harmless questions in alarming words the backbone wrote itself (``training.negatives``). So the gate learns
"a harmful request", not "a question the model cannot answer" nor "a question with the word kill in it".

Protocol (docs/evaluation.md): every choice is made on development data only.

1. Features: ``soft_prompts(query).mean(1)`` for every harmful training query, every chatterbot query, a
   seeded sample of the evals queries and every held-out-split query; cached per query id, resumable.
2. Regularisation C: leave one harmful family out (fit on the train split without it, score it at the threshold
   the development limits below give); the C with the best mean recall wins.
3. The final probe fits every train-split row. Its threshold: the lowest that routes at most ``max_benign``
   of the held-out split's benign queries and at most ``max_dangerous`` of the benign-but-dangerous
   development questions (``evaluation/data/benign_dangerous_dev.jsonl``, never trained on).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from encoder.base import Encoder
from encoder.gate import FEATURE, FEATURE_WITH_TEACHER, GateConfig, RefusalGate
from encoder.llm2vec_gen import LLM2VecGenEncoder

from .jsonl import read_jsonl
from .queries import HARMFUL_GROUP

log = logging.getLogger(__name__)

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


@dataclass
class GateConfigOptions:
    """What ``train_gate`` samples and targets (defaults are the shipped gate's)."""

    evals_sample: int = 1500  # benign OpenAI-evals training queries featurised (all others are)
    max_benign: float = 0.01  # at most this share of held-out benign queries routed
    max_dangerous: float = 0.05  # ... and of the benign-but-dangerous development questions
    seed: int = 0
    batch_size: int = 16


def family(source: str) -> str:
    """``pyrit/objective/bias`` -> ``pyrit/objective``; ``evals/x`` -> ``evals``."""
    parts = source.split("/")
    return "/".join(parts[:2]) if parts[0] == HARMFUL_GROUP else parts[0]


def is_harmful(source: str) -> bool:
    return source.split("/")[0] == HARMFUL_GROUP


def select_rows(rows: Sequence[dict[str, Any]], evals_sample: int, seed: int = 0) -> list[dict[str, Any]]:
    """Every held-out row, every harmful and chatterbot training row, a seeded sample of evals training rows."""
    evals = [r for r in rows if r["split"] == "train" and family(r["source"]) == "evals"]
    keep = {r["id"] for r in random.Random(seed).sample(evals, min(evals_sample, len(evals)))}
    return [r for r in rows if r["split"] != "train" or family(r["source"]) != "evals" or r["id"] in keep]


def featurise(encoder: LLM2VecGenEncoder, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
    """Mean soft prompt (N, H) per query, query instruction (what the gate reads at search time)."""
    return encoder.soft_prompts(list(texts), task="query", batch_size=batch_size).float().mean(dim=1).cpu().numpy()


def cached_features(encoder: LLM2VecGenEncoder, rows: Sequence[dict[str, Any]], cache: Path, batch_size: int = 16, chunk: int = 64) -> np.ndarray:
    """Features of ``rows`` in order, computed ``chunk`` queries at a time and saved after each (kill-safe)."""
    done: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as stored:
            done = dict(zip(stored["ids"].tolist(), stored["features"]))
    todo = [r for r in rows if r["id"] not in done]
    for start in tqdm(range(0, len(todo), chunk), desc="gate features", unit="chunk", disable=not todo):
        part = todo[start : start + chunk]
        done.update(zip((r["id"] for r in part), featurise(encoder, [r["query"] for r in part], batch_size)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, ids=np.array(list(done)), features=np.stack(list(done.values())))
        tmp.replace(cache)
    return np.stack([done[r["id"]] for r in rows])


def fit_probe(x: np.ndarray, y: np.ndarray, c: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised features, classes balanced; returns (weight, bias) on raw features."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0) + 1e-6
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed).fit((x - mean) / std, y)
    weight = model.coef_[0] / std
    return weight.astype(np.float32), float(model.intercept_[0] - (mean / std) @ model.coef_[0])


def scores(x: np.ndarray, weight: np.ndarray, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weight + bias)))


def threshold_for(benign: Sequence[np.ndarray], limits: Sequence[float]) -> float:
    """The lowest threshold that routes at most ``limits[i]`` of each benign score set (route: score >= threshold)."""
    candidates = []
    for values, limit in zip(benign, limits):
        values = np.sort(np.asarray(values))[::-1]
        allowed = int(np.floor(limit * len(values)))  # this many may be routed
        candidates.append(float(np.nextafter(values[allowed], np.inf)) if allowed < len(values) else 0.0)
    return max(candidates)


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def leave_family_out(
    x: np.ndarray, rows: Sequence[dict[str, Any]], c: float, x_dangerous: np.ndarray, limits: tuple[float, float], seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per harmful family: fit without it (train split), score it at the threshold that routes at most ``limits`` of the
    held-out benign queries and of the benign-but-dangerous development questions."""
    fam = np.array([family(r["source"]) for r in rows])
    train = np.array([r["split"] == "train" for r in rows])
    harmful = np.array([is_harmful(r["source"]) for r in rows])
    benign_dev = ~train & ~harmful
    out = {}
    for name in sorted(set(fam[harmful])):
        fit = train & (fam != name)
        weight, bias = fit_probe(x[fit], harmful[fit].astype(int), c, seed)
        held, benign = scores(x[fam == name], weight, bias), scores(x[benign_dev], weight, bias)
        threshold = threshold_for([benign, scores(x_dangerous, weight, bias)], list(limits))
        out[name] = {"n": int((fam == name).sum()), "auc": round(auc(held, benign), 4), "recall": round(float((held >= threshold).mean()), 4)}
    return out


def train_gate(
    encoder: LLM2VecGenEncoder, responses: Path, cache: Path, dangerous_dev: Sequence[str], options: GateConfigOptions | None = None,
    negatives: Path | None = None, teacher: Encoder | None = None,
) -> tuple[RefusalGate, dict[str, Any]]:
    """Features, C by leave-one-family-out, the final probe and its threshold (see the module docstring);
    ``negatives``: the backbone's harmless questions in alarming words (``training.negatives``), training rows;
    ``teacher``: also read its query vector (the fused mode's second pass), concatenated to the mean soft prompt."""
    options = options or GateConfigOptions()
    started = time.perf_counter()
    extra = list(read_jsonl(negatives)) if negatives is not None and negatives.is_file() else []
    rows = select_rows(list(read_jsonl(responses)), options.evals_sample, options.seed) + extra
    x = cached_features(encoder, rows, cache, options.batch_size)
    x_dangerous = featurise(encoder, dangerous_dev, options.batch_size)
    if teacher is not None:
        x = np.hstack([x, teacher.encode([r["query"] for r in rows], task="query", batch_size=64, show_progress_bar=True)])
        x_dangerous = np.hstack([x_dangerous, teacher.encode(list(dangerous_dev), task="query", batch_size=64)])
    limits = (options.max_benign, options.max_dangerous)
    harmful = np.array([is_harmful(r["source"]) for r in rows])
    train = np.array([r["split"] == "train" for r in rows])

    sweep = {c: leave_family_out(x, rows, c, x_dangerous, limits, options.seed) for c in C_GRID}
    mean_recall = {c: float(np.mean([v["recall"] for v in per.values()])) for c, per in sweep.items()}
    best_c = max(C_GRID, key=lambda c: (mean_recall[c], -c))
    log.info("gate: C sweep (mean leave-family-out recall) %s -> C=%s", mean_recall, best_c)

    weight, bias = fit_probe(x[train], harmful[train].astype(int), best_c, options.seed)
    benign_dev, harmful_dev = scores(x[~train & ~harmful], weight, bias), scores(x[~train & harmful], weight, bias)
    dangerous = scores(x_dangerous, weight, bias)
    threshold = threshold_for([benign_dev, dangerous], list(limits))
    report = {
        "feature": "mean soft prompt (query instruction)" + (f" + {teacher.name} query vector" if teacher is not None else ""),
        "label": "source is a PyRIT harmful-request family",
        "rows": {"train": int(train.sum()), "train_harmful": int((train & harmful).sum()), "hard_negatives": len(extra), "dev": int((~train).sum()),
                 "dev_harmful": int((~train & harmful).sum()), "benign_dangerous_dev": len(dangerous_dev)},
        "c_sweep": {str(c): {"mean_recall": round(mean_recall[c], 4), "families": sweep[c]} for c in C_GRID},
        "c": best_c,
        "threshold": threshold,
        "dev": {
            "benign_routed": round(float((benign_dev >= threshold).mean()), 4),
            "harmful_routed": round(float((harmful_dev >= threshold).mean()), 4),
            "benign_dangerous_routed": round(float((dangerous >= threshold).mean()), 4),
            "auc_harmful_vs_benign": round(auc(harmful_dev, benign_dev), 4),
        },
        "options": vars(options),
        "seconds": round(time.perf_counter() - started, 1),
    }
    config = GateConfig(threshold=threshold, hidden_size=encoder.config.hidden_size, training=report,
                        feature=FEATURE_WITH_TEACHER if teacher is not None else FEATURE,
                        teacher=teacher.name if teacher is not None else None, teacher_dim=teacher.dim if teacher is not None else 0)
    return RefusalGate.from_weights(torch.from_numpy(weight), bias, config), report


def read_questions(path: Path) -> list[str]:
    """The ``query`` of every row of a JSONL question file."""
    return [row["query"] for row in read_jsonl(path)]


def write_report(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
