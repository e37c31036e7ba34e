"""Contrastive refinement of the align projection on cached features: InfoNCE against the teacher's targets.

The ridge refit (``training.head``) minimises |e - y|^2: the best estimate of each response's teacher vector,
which regresses towards the mean of similar responses. Retrieval needs something else: that a query lands
nearer *its* response than the others'. Starting from the ridge solution, this fits the same affine map
``e = x W^T + b`` on the same frozen features by InfoNCE over a batch of unique targets::

    e_i = unit(x_i W^T + b)       (B, D)    the query embeddings of a batch
    t_u = unit(y_u)               (U, D)    the batch's distinct teacher targets (refusals repeat: one column each)
    L   = CE(e t^T / tau, target index of i)  +  beta * mean_i (1 - cos(e_i, y_i))

Examples sharing a response share one column, so a repeated refusal is never its own negative. InfoNCE alone
drops the component all targets share, so the cosine to the own target falls even as its rank rises; ``beta``
(``cosine_weight``) keeps the embedding near its target as well. The
temperature and the number of epochs are chosen on a validation fold of whole response groups (mean
reciprocal rank of the own target among the fold's targets); the held-out split stays untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

TEMPERATURES = (0.02, 0.05, 0.1)


@dataclass(frozen=True)
class ContrastiveConfig:
    temperatures: tuple[float, ...] = TEMPERATURES
    max_epochs: int = 60
    batch_size: int = 512
    lr: float = 1e-3
    cosine_weight: float = 0.0  # beta: weight of the mean (1 - cosine) to the own target beside InfoNCE
    seed: int = 0


def group_ids(groups: list[str]) -> np.ndarray:
    """An integer per distinct group (e.g. response text), in order of first appearance."""
    index: dict[str, int] = {}
    return np.array([index.setdefault(g, len(index)) for g in groups])


def target_mrr(x: np.ndarray, w: np.ndarray, b: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Mean reciprocal rank of each example's own target among the distinct targets of the set (ties: optimistic)."""
    e = x @ w.T + b
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    uniq, first = np.unique(groups, return_index=True)
    t = y[first] / np.linalg.norm(y[first], axis=1, keepdims=True)  # (U, D)
    scores = e @ t.T  # (N, U)
    own = scores[np.arange(len(x)), np.searchsorted(uniq, groups)]
    ranks = 1 + (scores > own[:, None]).sum(1)
    return float((1.0 / ranks).mean())


def info_nce(e: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of embeddings e (B, D) against the batch's distinct targets; rows of one group share a column."""
    uniq, inverse = torch.unique(groups, return_inverse=True)
    first = torch.zeros(len(uniq), dtype=torch.long).scatter_(0, inverse, torch.arange(len(groups)))  # a row per group
    logits = F.normalize(e, dim=1) @ F.normalize(y[first], dim=1).T / temperature  # (B, U)
    return F.cross_entropy(logits, inverse)


def train_epochs(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, w: np.ndarray, b: np.ndarray, temperature: float, epochs: int,
    config: ContrastiveConfig, validate=None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """``epochs`` of Adam on InfoNCE from (w, b); returns the final (w, b) and ``validate(w, b)`` after each epoch."""
    torch.manual_seed(config.seed)
    W = torch.nn.Parameter(torch.from_numpy(w.astype(np.float32)).clone())
    B = torch.nn.Parameter(torch.from_numpy(b.astype(np.float32)).clone())
    opt = torch.optim.Adam([W, B], lr=config.lr)
    xt, yt, gt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)), torch.from_numpy(groups)
    rng = np.random.default_rng(config.seed)
    history: list[float] = []
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), config.batch_size):
            idx = order[start : start + config.batch_size]
            e = xt[idx] @ W.T + B
            loss = info_nce(e, yt[idx], gt[idx], temperature)
            if config.cosine_weight:
                loss = loss + config.cosine_weight * (1 - F.cosine_similarity(e, yt[idx], dim=1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if validate is not None:
            history.append(validate(W.detach().numpy(), B.detach().numpy()))
    return W.detach().numpy().copy(), B.detach().numpy().copy(), history


def contrastive_refit(
    x: np.ndarray,
    y: np.ndarray,
    groups: list[str],
    start: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    fold: np.ndarray,
    config: ContrastiveConfig = ContrastiveConfig(),
) -> tuple[np.ndarray, np.ndarray, dict]:
    """InfoNCE from ``start(x, y)`` (the ridge solution): temperature and epochs chosen on ``fold == 0``, then run on all.

    The search starts from ``start`` fitted without the validation fold, so the fold judges both the start and
    InfoNCE on examples neither saw; the final run starts from ``start`` on every example and runs the chosen
    number of epochs (a quarter more optimiser steps than validated, with 5 folds). ``fold`` gives whole groups
    per fold (``head.group_folds``). Returns (w, b) and the search report: ``search[tau][i]`` is the validation
    MRR after i + 1 epochs; ``epochs == 0`` means InfoNCE never beat the start, which is then kept."""
    gid = group_ids(groups)
    val, fit = fold == 0, fold != 0
    w_fit, b_fit = start(x[fit], y[fit])
    start_mrr = target_mrr(x[val], w_fit, b_fit, y[val], gid[val])
    search: dict[str, list[float]] = {}
    best = (start_mrr, None, 0)  # (val MRR, temperature, epochs)
    for temperature in config.temperatures:
        _, _, history = train_epochs(
            x[fit], y[fit], gid[fit], w_fit, b_fit, temperature, config.max_epochs, config,
            validate=lambda ww, bb: target_mrr(x[val], ww, bb, y[val], gid[val]),
        )
        search[str(temperature)] = [round(v, 4) for v in history]
        epoch = int(np.argmax(history))
        log.info("InfoNCE tau %g: validation MRR %.4f -> %.4f at epoch %d", temperature, start_mrr, history[epoch], epoch + 1)
        if history[epoch] > best[0]:
            best = (history[epoch], temperature, epoch + 1)
    report = {
        "validation_mrr_ridge": round(start_mrr, 4), "validation_mrr": round(best[0], 4), "temperature": best[1], "epochs": best[2],
        "cosine_weight": config.cosine_weight, "max_epochs": config.max_epochs, "search": search,
    }
    w, b = start(x, y)
    if best[1] is None:
        log.warning("InfoNCE did not beat the ridge solution on the validation fold; keeping ridge")
        return w, b, report
    w, b, _ = train_epochs(x, y, gid, w, b, best[1], best[2], config)
    return w, b, report
