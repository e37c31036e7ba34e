"""Closed-form refit of the align projection: ridge regression of teacher targets on soft-prompt means.

The embedding is affine in the mean soft prompt, ``e = align(p).mean(1) = W_a · mean_k(p_k) + b_a``, so
with the special tokens and ``recon`` held fixed, the ``align`` that minimises L_align over a data set is
a least-squares problem with a closed-form answer. SGD approaches it slowly on this CPU (one backward
through the LM per example and step); the refit needs one forward per example, once:

    x_i = mean_k recon(h_i)[k] = recon(mean_k h_i[k])    (N, H)   frozen features (recon is affine)
    y_i = teacher(response_i)        (N, D)
    W   = argmin |X_c W - Y_c|^2 + lambda |W|^2 = (X_c^T X_c + lambda I)^-1 X_c^T Y_c   (centred X, Y)

lambda is chosen by k-fold cross-validation on the training examples (mean cosine of ``e`` and ``y``);
held-out examples stay untouched for the report. ``recon`` and the special rows do not change, so
decoding (which reads ``p`` only) is exactly as before. The cache holds ``mean_k h_i[k]``, which depends on the
special rows but not on ``recon``: an adapter whose ``recon`` was trained on (for decoding) with the special rows
frozen is refitted from the same cache in seconds.

``objective="contrastive"`` refines the ridge solution by InfoNCE on the same features
(``training.contrastive``): least squares predicts each target's neighbourhood, retrieval needs the own target
ranked above the others'. The report gives both, with the held-out MRR of each query's own response.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from encoder.llm2vec_gen import LLM2VecGenEncoder

from .contrastive import ContrastiveConfig, contrastive_refit, group_ids, target_mrr
from .fit import Example
from .targets import TargetStore, text_key

log = logging.getLogger(__name__)

OBJECTIVES = ("ridge", "contrastive")
LAMBDAS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)  # soft prompts are token-embedding sized (|x| ~ 0.3)


def feature_tag(encoder: LLM2VecGenEncoder) -> str:
    """What the cached special-state means depend on: the backbone and its dtype, the instructions, the length
    limit and the special rows (not ``recon``, applied after the cache, nor ``align``, which the refit replaces)."""
    digest = hashlib.sha256(encoder.config.backbone_sha256.encode())
    digest.update(json.dumps({"instructions": encoder.instructions, "max_length": encoder.max_length, "dtype": str(encoder.model.lm_dtype)}, sort_keys=True).encode())
    digest.update(encoder.model.special.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def feature_store(folder: Path, encoder: LLM2VecGenEncoder) -> TargetStore:
    """The content-hash cache of one adapter's special-state means mean_k h[k], ``folder/<feature_tag>/``."""
    tag = feature_tag(encoder)
    return TargetStore(Path(folder) / tag, f"special-state-mean:{tag}", encoder.backbone.hidden_size, normalized=False)


def example_key(example: Example) -> str:
    return text_key(f"{example.task}\0{example.query}")


def soft_prompt_means(
    encoder: LLM2VecGenEncoder, examples: list[Example], store: TargetStore, batch_size: int = 16, save_every: int = 256, progress: bool = True
) -> np.ndarray:
    """x = mean_k recon(h)[k] = recon(mean_k h[k]) per example (N, H); the state means come from ``store``,
    computing only what it lacks (resumable).

    Texts run shortest first, so a batch pads little; every ``save_every`` texts are saved as a shard."""
    keys = [example_key(ex) for ex in examples]
    todo: dict[str, list[int]] = {}
    for key, ex in zip(keys, examples):
        if key not in store and key not in todo:
            todo[key] = encoder.tokenize([ex.query], ex.task)[0]
    order = sorted(todo, key=lambda k: len(todo[k]))
    log.info("%d examples, %d features cached, %d to compute", len(examples), len(set(keys)) - len(order), len(order))
    with tqdm(total=len(order), unit="text", desc="features", disable=not progress) as bar, torch.inference_mode():
        for start in range(0, len(order), save_every):
            chunk = order[start : start + save_every]
            out = []
            for b in range(0, len(chunk), batch_size):
                ids = [todo[k] for k in chunk[b : b + batch_size]]
                out.append(encoder.special_states_batch(ids).float().mean(1).cpu().numpy())  # (B, H)
                bar.update(len(ids))
            store.add(chunk, np.concatenate(out))
        recon = encoder.model.recon
        return recon(torch.from_numpy(store.get(keys)).to(recon.weight.device)).cpu().numpy()


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(W (D, H), b (D,)) minimising |x W^T + b - y|^2 + lam |W|^2 (bias unpenalised)."""
    mx, my = x.mean(0), y.mean(0)
    xc = (x - mx).astype(np.float64)
    gram = xc.T @ xc + lam * np.eye(x.shape[1])
    w = np.linalg.solve(gram, xc.T @ (y - my)).T  # (D, H)
    return w.astype(np.float32), (my - w @ mx).astype(np.float32)


def mean_cosine(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: np.ndarray) -> float:
    """Mean cosine of the embeddings x W^T + b and the targets y."""
    e = x @ w.T + b
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return float((e * y / np.linalg.norm(y, axis=1, keepdims=True)).sum(1).mean())


def group_folds(groups: list[str], folds: int = 5, seed: int = 0) -> np.ndarray:
    """A fold number per example such that examples of one group share a fold (seeded)."""
    names = sorted(set(groups))
    fold_of = dict(zip(names, np.random.default_rng(seed).permutation(len(names)) % folds))
    return np.array([fold_of[g] for g in groups])


def cross_validate(
    x: np.ndarray, y: np.ndarray, lambdas: tuple[float, ...] = LAMBDAS, folds: int = 5, seed: int = 0, groups: list[str] | None = None
) -> dict[float, float]:
    """Mean held-in-fold cosine per lambda over ``folds`` seeded folds.

    ``groups`` (e.g. each example's response) keeps examples that share a target in one fold: a query and
    the document example made from its response have the same teacher vector, and splitting them would
    reward memorising targets, i.e. too small a lambda."""
    fold = group_folds(groups, folds, seed) if groups is not None else np.random.default_rng(seed).permutation(len(x)) % folds
    scores = {}
    for lam in lambdas:
        per_fold = [mean_cosine(x[fold == f], *ridge(x[fold != f], y[fold != f], lam), y[fold == f]) for f in range(folds)]
        scores[lam] = float(np.mean(per_fold))
    return scores


def _held_out_mrr(features: dict[str, np.ndarray], evaluated: dict[str, list[Example]], w: np.ndarray, b: np.ndarray) -> float | None:
    """MRR of each held-out query's own response among the held-out responses (how well the embedding discriminates)."""
    if "held_out" not in features:
        return None
    examples = evaluated["held_out"]
    return round(target_mrr(features["held_out"], w, b, np.stack([ex.target for ex in examples]), group_ids([ex.response for ex in examples])), 4)


def refit_align(
    encoder: LLM2VecGenEncoder,
    train: list[Example],
    held_out: list[Example],
    cache: Path,
    lambdas: tuple[float, ...] = LAMBDAS,
    batch_size: int = 16,
    held_out_documents: list[Example] | None = None,
    objective: str = "ridge",
    contrastive: ContrastiveConfig = ContrastiveConfig(),
) -> dict:
    """Replace ``encoder``'s align projection by the cross-validated ridge solution, refined by InfoNCE when
    ``objective="contrastive"`` (``training.contrastive``); returns the report."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    started = time.perf_counter()
    store = feature_store(cache, encoder)
    x = soft_prompt_means(encoder, train, store, batch_size)
    y = np.stack([ex.target for ex in train])
    evaluated = {"held_out": held_out, "held_out_documents": held_out_documents or []}
    features = {name: soft_prompt_means(encoder, exs, store, batch_size) for name, exs in evaluated.items() if exs}
    align = encoder.model.align
    before_w, before_b = align.weight.detach().cpu().numpy(), align.bias.detach().cpu().numpy()
    report: dict = {"train_examples": len(train), "feature_tag": feature_tag(encoder)}
    report["train_before"] = mean_cosine(x, before_w, before_b, y)
    for name, fx in features.items():
        report[f"{name}_before"] = mean_cosine(fx, before_w, before_b, np.stack([ex.target for ex in evaluated[name]]))
    report["held_out_mrr_before"] = _held_out_mrr(features, evaluated, before_w, before_b)
    groups = [ex.response for ex in train]
    scores = cross_validate(x, y, lambdas, groups=groups)
    best = max(scores, key=scores.get)
    w, b = ridge(x, y, best)
    report.update(objective=objective, cv_cosine={str(k): round(v, 4) for k, v in scores.items()}, lam=best)
    if objective == "contrastive":
        report["ridge_held_out"] = mean_cosine(features["held_out"], w, b, np.stack([ex.target for ex in held_out])) if held_out else None
        report["ridge_held_out_mrr"] = _held_out_mrr(features, evaluated, w, b)
        w, b, report["contrastive"] = contrastive_refit(x, y, groups, lambda xs, ys: ridge(xs, ys, best), group_folds(groups), contrastive)
    report["train_after"] = mean_cosine(x, w, b, y)
    for name, fx in features.items():
        report[f"{name}_after"] = mean_cosine(fx, w, b, np.stack([ex.target for ex in evaluated[name]]))
    report["held_out_mrr_after"] = _held_out_mrr(features, evaluated, w, b)
    with torch.no_grad():
        align.weight.copy_(torch.from_numpy(w))
        align.bias.copy_(torch.from_numpy(b))
    report["seconds"] = round(time.perf_counter() - started, 1)
    log.info("refit align: lambda %g, cv cosine %.4f, held-out %.4f -> %.4f", best, scores[best], report.get("held_out_before", float("nan")), report.get("held_out_after", float("nan")))
    return report
