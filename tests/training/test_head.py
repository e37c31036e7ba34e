"""The closed-form align refit: ridge is least squares, the refit adapter embeds as its features say,
features are cached and resumed, and decoding (which reads only the soft prompts) does not change."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from encoder.llm2vec_gen import LLM2VecGenEncoder
from training.fit import Example
from training.head import cross_validate, feature_store, feature_tag, group_folds, mean_cosine, refit_align, ridge, soft_prompt_means


def _examples(n: int, dim: int = 16, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    topics = ["lists", "files", "sockets", "threads"]
    centres = rng.normal(size=(4, dim)).astype(np.float32)
    return [Example(f"question {i} about {topics[i % 4]}?", "An answer.", centres[i % 4] + 0.1 * rng.normal(size=dim).astype(np.float32)) for i in range(n)]


def test_ridge_without_penalty_recovers_an_exact_affine_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    w_true, b_true = rng.normal(size=(5, 8)), rng.normal(size=5)
    w, b = ridge(x, x @ w_true.T + b_true, lam=0.0)
    np.testing.assert_allclose(w, w_true, atol=1e-4)
    np.testing.assert_allclose(b, b_true, atol=1e-4)


def test_a_large_penalty_shrinks_towards_the_mean_target():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 3))
    w, b = ridge(x, y, lam=1e9)
    assert np.abs(w).max() < 1e-6
    np.testing.assert_allclose(b, y.mean(0), atol=1e-5)


def test_cross_validation_prefers_the_penalty_that_generalises():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 40))
    y = x[:, :4] @ rng.normal(size=(4, 6)) + 2.0 * rng.normal(size=(60, 6))  # few samples, many features, noisy
    scores = cross_validate(x, y, lambdas=(1e-6, 30.0))
    assert scores[30.0] > scores[1e-6]


def test_examples_that_share_a_target_share_a_fold():
    groups = ["refusal", "a", "refusal", "b", "a", "c", "refusal", "d", "e", "f"]
    fold = group_folds(groups, folds=3)
    for g in set(groups):
        assert len({fold[i] for i, name in enumerate(groups) if name == g}) == 1
    assert len(set(fold)) == 3


def test_cross_validation_with_duplicated_targets_does_not_reward_memorising():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 30))
    y = rng.normal(size=(40, 8))  # no relation to x: nothing generalises
    x2, y2 = np.concatenate([x, x + 0.01 * rng.normal(size=x.shape)]), np.concatenate([y, y])  # each target twice
    groups = [str(i) for i in range(40)] * 2
    leaky = cross_validate(x2, y2, lambdas=(1e-6,))[1e-6]
    grouped = cross_validate(x2, y2, lambdas=(1e-6,), groups=groups)[1e-6]
    assert leaky > 0.5 > grouped, (leaky, grouped)


def test_refit_raises_training_cosine_and_leaves_decoding_alone(tiny_backbone, tmp_path):
    encoder = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=0)
    train, held_out = _examples(48), _examples(8, seed=1)
    prompts_before = encoder.soft_prompts([ex.query for ex in held_out])
    tag = feature_tag(encoder)
    report = refit_align(encoder, train, held_out, tmp_path, lambdas=(1e-4, 1e-2), batch_size=8)
    assert report["train_after"] > report["train_before"]
    assert report["feature_tag"] == tag == feature_tag(encoder), "align is not part of what the features depend on"
    torch.testing.assert_close(encoder.soft_prompts([ex.query for ex in held_out]), prompts_before)
    x = soft_prompt_means(encoder, held_out, feature_store(tmp_path, encoder), batch_size=8)
    e = encoder.encode([ex.query for ex in held_out], task="query")
    y = np.stack([ex.target for ex in held_out])
    w, b = encoder.model.align.weight.detach().numpy(), encoder.model.align.bias.detach().numpy()
    assert abs(mean_cosine(x, w, b, y) - float((e * y / np.linalg.norm(y, axis=1, keepdims=True)).sum(1).mean())) < 1e-4, "features are what encode() sees"


def test_the_contrastive_objective_starts_from_ridge_and_reports_both(tiny_backbone, tmp_path):
    encoder = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=0)
    distinct = lambda exs: [replace(ex, response=f"Answer {i}.") for i, ex in enumerate(exs)]  # noqa: E731  one target per response
    train, held_out = distinct(_examples(48)), distinct(_examples(8, seed=1))
    report = refit_align(encoder, train, held_out, tmp_path, lambdas=(1e-2,), batch_size=8, objective="contrastive")
    assert report["objective"] == "contrastive" and report["lam"] == 1e-2
    assert {"validation_mrr_ridge", "validation_mrr", "temperature", "epochs"} <= set(report["contrastive"])
    assert 0.0 < report["held_out_mrr_after"] <= 1.0 and "ridge_held_out_mrr" in report
    e = encoder.encode([ex.query for ex in held_out], task="query")
    assert abs(report["held_out_after"] - float((e * np.stack([ex.target for ex in held_out]) / np.linalg.norm(np.stack([ex.target for ex in held_out]), axis=1, keepdims=True)).sum(1).mean())) < 1e-4
    with pytest.raises(ValueError, match="objective"):
        refit_align(encoder, train, held_out, tmp_path, objective="cosine")


def test_features_are_cached_and_only_missing_ones_computed(tiny_backbone, tmp_path):
    encoder = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=0)
    store = feature_store(tmp_path, encoder)
    first = soft_prompt_means(encoder, _examples(10), store, batch_size=4, save_every=4)
    assert len(store) == 10 and len(list(store.folder.glob("*.npy"))) == 3
    again = soft_prompt_means(encoder, _examples(12), feature_store(tmp_path, encoder), batch_size=4)
    np.testing.assert_allclose(again[:10], first, atol=1e-6)
    assert len(list(store.folder.glob("*.npy"))) == 4, "one new shard for the two new texts"
    other = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=1)
    assert feature_store(tmp_path, other).folder != store.folder, "another adapter's features live apart"


def test_features_of_another_instruction_or_length_limit_live_apart(tiny_backbone, tmp_path):
    encoder = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=0)
    tag = feature_tag(encoder)
    encoder.instructions = {**encoder.instructions, "query": "Answer: "}
    assert feature_tag(encoder) != tag
    shorter = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=0, max_length=64)
    assert feature_tag(shorter) != tag


def test_a_new_recon_reuses_the_cached_states_and_its_features_are_what_encode_sees(tiny_backbone, tmp_path):
    encoder = LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, seed=0)
    examples = _examples(6)
    store = feature_store(tmp_path, encoder)
    before = soft_prompt_means(encoder, examples, store, batch_size=4)
    with torch.no_grad():  # as if recon had been trained on for decoding, the special rows frozen
        encoder.model.recon.weight.mul_(1.5).add_(0.01)
    assert feature_store(tmp_path, encoder).folder == store.folder, "recon is applied after the cache"
    after = soft_prompt_means(encoder, examples, feature_store(tmp_path, encoder), batch_size=4)
    assert not np.allclose(after, before)
    torch.testing.assert_close(torch.from_numpy(after), encoder.soft_prompts([ex.query for ex in examples]).float().mean(1), atol=1e-4, rtol=1e-4)
