"""LLM2VecGen module: shapes, what trains, and the two losses (tiny random backbone)."""

import pytest
import torch

from encoder.model import LLM2VecGen


def _batch(backbone, texts):
    tok = backbone.tokenizer
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def _batch_ids(backbone, rows):
    """Left-padded ids and mask for token id lists."""
    width = max(len(r) for r in rows)
    pad = backbone.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def test_shapes_of_states_prompts_and_embedding(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=10, teacher_dim=24)
    ids, mask = _batch(tiny_backbone, ["hello world", "a much longer sentence than the first"])
    h, p, e = model(ids, mask)
    assert h.shape == (2, 10, 32)
    assert p.shape == (2, 10, 32)
    assert e.shape == (2, 24)


def test_special_tokens_start_near_the_vocabulary_not_at_zero(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=10, teacher_dim=24)
    vocab_mean = tiny_backbone.model.get_input_embeddings().weight.float().mean(0)
    assert model.special.norm(dim=1).min() > 0
    assert torch.allclose(model.special.mean(0), vocab_mean, atol=0.05)
    assert not torch.allclose(model.special[0], model.special[1])


def test_only_special_rows_and_projections_receive_gradients(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=4, teacher_dim=24)
    ids, mask = _batch(tiny_backbone, ["what is python", "sort a list"])
    response = tiny_backbone.tokenizer(["It is a language.", "Use sorted()."], return_tensors="pt", padding=True)
    _, p, e = model(ids, mask)
    loss = model.recon_loss(p, response["input_ids"], response["attention_mask"]) + model.align_loss(e, torch.randn(2, 24))
    loss.backward()
    trainable = {id(t) for t in model.trainable_parameters()}
    for name, param in model.named_parameters():
        if id(param) in trainable:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert not param.requires_grad and param.grad is None, name
    assert set(model.adapter_state_dict()) == {"special", "recon.weight", "recon.bias", "align.weight", "align.bias"}


def test_recon_loss_ignores_padding(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=4, teacher_dim=8)
    ids, mask = _batch(tiny_backbone, ["q"])
    _, p, _ = model(ids, mask)
    response = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0]])
    a = model.recon_loss(p, response, torch.ones_like(response))
    b = model.recon_loss(p, padded, torch.tensor([[1, 1, 1, 0, 0]]))
    assert torch.allclose(a, b, atol=1e-5)


def test_logit_lens_and_generation_shapes(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=3, teacher_dim=8)
    ids, mask = _batch(tiny_backbone, ["one", "two three"])
    h, p, _ = model(ids, mask)
    assert model.lens(h, top_k=4).shape == (2, 3, 4)
    out = model.generate(p, max_new_tokens=5, eos_token_id=tiny_backbone.eos_token_ids, pad_token_id=tiny_backbone.pad_token_id)
    assert out.shape[0] == 2 and 1 <= out.shape[1] <= 5


def test_initialisation_is_deterministic_per_seed(tiny_backbone):
    a = LLM2VecGen(tiny_backbone.model, num_tokens=3, teacher_dim=8, seed=1)
    b = LLM2VecGen(tiny_backbone.model, num_tokens=3, teacher_dim=8, seed=1)
    c = LLM2VecGen(tiny_backbone.model, num_tokens=3, teacher_dim=8, seed=2)
    assert torch.equal(a.special, b.special) and torch.equal(a.align.weight, b.align.weight)
    assert not torch.equal(a.special, c.special)


def test_prefix_cache_path_gives_the_same_states_and_gradients(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=4, teacher_dim=8)
    ids, mask = _batch(tiny_backbone, ["short", "a noticeably longer question about lists"])
    plain = model.special_states(ids, mask)
    cached = model.special_states_cached_prefix(ids, mask)
    assert torch.allclose(plain, cached, atol=1e-5)
    plain.sum().backward()
    grad_plain = model.special.grad.clone()
    model.special.grad = None
    cached.sum().backward()
    torch.testing.assert_close(model.special.grad, grad_plain, rtol=1e-4, atol=1e-3)


def test_calibration_gives_prompts_the_scale_of_token_embeddings_and_embeddings_the_target_norm(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=4, teacher_dim=24)
    ids, mask = _batch(tiny_backbone, ["what is python", "sort a list", "open a file"])
    h = model.special_states(ids, mask).detach()
    scales = model.calibrate(h, target_norm=1.0)
    p, e = model.project(h)
    token_norm = tiny_backbone.model.get_input_embeddings().weight.norm(dim=-1).mean()
    assert set(scales) == {"recon_scale", "align_scale"}
    assert torch.isclose(p.norm(dim=-1).mean(), token_norm, rtol=1e-4)
    assert torch.isclose(e.norm(dim=-1).mean(), torch.tensor(1.0), rtol=1e-4)
    assert model.calibrate(h, target_norm=1.0) == {"recon_scale": pytest.approx(1.0, rel=1e-4), "align_scale": pytest.approx(1.0, rel=1e-4)}


def test_prefix_keys_and_values_stand_in_for_the_prefix_tokens(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=3, teacher_dim=8)
    prefix = tiny_backbone.tokenizer("Answer this: ", add_special_tokens=False)["input_ids"]
    rows = [tiny_backbone.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ["hi", "a longer one here"]]
    full = model.special_states(*_batch_ids(tiny_backbone, [prefix + r for r in rows]))
    after_prefix = model.special_states(*_batch_ids(tiny_backbone, rows), prefix=model.prefix_kv(torch.tensor(prefix)))
    torch.testing.assert_close(after_prefix, full, rtol=1e-4, atol=1e-5)


def test_keep_embedding_re_expresses_align_so_a_new_recon_changes_the_prompts_not_the_embedding(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=4, teacher_dim=24)
    ids, mask = _batch(tiny_backbone, ["what is python", "sort a list", "open a file"])
    h = model.special_states(ids, mask).detach()
    p_before, e_before = model.project(h)
    recon_before = (model.recon.weight.detach().clone(), model.recon.bias.detach().clone())
    with torch.no_grad():
        model.recon.weight.add_(0.3 * torch.randn_like(model.recon.weight))
        model.recon.bias.add_(0.3 * torch.randn_like(model.recon.bias))
    model.keep_embedding(recon_before)
    p_after, e_after = model.project(h)
    assert not torch.allclose(p_after, p_before, atol=1e-3)
    torch.testing.assert_close(e_after, e_before, atol=1e-5, rtol=1e-4)


def test_keep_embedding_refuses_a_recon_it_cannot_invert(tiny_backbone):
    model = LLM2VecGen(tiny_backbone.model, num_tokens=4, teacher_dim=24)
    recon_before = (model.recon.weight.detach().clone(), model.recon.bias.detach().clone())
    align_before = model.align.weight.detach().clone()
    with torch.no_grad():
        model.recon.weight[0] = model.recon.weight[1]  # two equal rows: singular
    with pytest.raises(ValueError, match="condition number"):
        model.keep_embedding(recon_before)
    assert torch.equal(model.align.weight, align_before), "align is left as it was"
