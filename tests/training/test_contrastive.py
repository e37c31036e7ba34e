"""InfoNCE refinement of the align projection: repeated targets share a column, and it sharpens retrieval."""

import numpy as np
import torch
import torch.nn.functional as F

from training.contrastive import ContrastiveConfig, contrastive_refit, group_ids, info_nce, target_mrr, train_epochs
from training.head import group_folds, ridge


def test_group_ids_number_distinct_groups_in_order_of_first_appearance():
    assert group_ids(["refusal", "a", "refusal", "b"]).tolist() == [0, 1, 0, 2]


def test_target_mrr_is_one_when_each_embedding_is_its_own_target():
    y = np.eye(4, 6, dtype=np.float32) + 0.01
    assert target_mrr(y, np.eye(6, dtype=np.float32), np.zeros(6, np.float32), y, np.arange(4)) == 1.0


def test_rows_sharing_a_target_are_not_each_others_negatives():
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    shared = info_nce(e, y, torch.tensor([7, 7, 3]), temperature=0.1)  # two columns: each row is right
    separate = info_nce(e, y, torch.tensor([7, 8, 3]), temperature=0.1)  # rows 0 and 1 would compete
    assert shared < 0.01 < separate


def test_contrastive_refit_beats_ridge_on_held_out_retrieval_when_targets_cluster():
    """Targets = a shared mean + a small private part: ridge regresses towards the mean, InfoNCE keeps the private part."""
    rng = np.random.default_rng(0)
    n, h, d = 600, 24, 16
    x = rng.normal(size=(n, h)).astype(np.float32)
    w_true = rng.normal(size=(d, h)).astype(np.float32)
    y = (x @ w_true.T * 0.05 + 3.0 + rng.normal(scale=0.3, size=(n, d))).astype(np.float32)
    groups = [str(i) for i in range(n)]
    train, test = slice(0, 500), slice(500, n)
    w0, b0 = ridge(x[train], y[train], 1.0)
    start = lambda xs, ys: ridge(xs, ys, 1.0)  # noqa: E731
    w1, b1, report = contrastive_refit(x[train], y[train], groups[:500], start, group_folds(groups[:500]), ContrastiveConfig(max_epochs=30, batch_size=128, lr=1e-2))
    assert report["temperature"] is not None and report["validation_mrr"] > report["validation_mrr_ridge"]
    ids = np.arange(n - 500)
    assert target_mrr(x[test], w1, b1, y[test], ids) > target_mrr(x[test], w0, b0, y[test], ids)


def test_a_cosine_term_keeps_embeddings_nearer_their_targets_than_infonce_alone():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 12)).T.astype(np.float32) * 0.05 + 3.0 + rng.normal(scale=0.3, size=(300, 8))).astype(np.float32)
    w0, b0 = ridge(x, y, 1.0)
    groups = np.arange(300)
    cos = lambda w, b: float((F.normalize(torch.from_numpy(x @ w.T + b), dim=1) * F.normalize(torch.from_numpy(y), dim=1)).sum(1).mean())  # noqa: E731
    plain = train_epochs(x, y, groups, w0, b0, 0.05, 20, ContrastiveConfig(batch_size=100, lr=1e-2))
    kept = train_epochs(x, y, groups, w0, b0, 0.05, 20, ContrastiveConfig(batch_size=100, lr=1e-2, cosine_weight=10.0))
    assert cos(*kept[:2]) > cos(*plain[:2])
