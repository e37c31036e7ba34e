"""The training loop on a tiny random backbone: it learns, checkpoints, and resumes exactly."""

import csv
import json
import os
import random
import signal
import time

import numpy as np
import pytest
import torch

from encoder.llm2vec_gen import LLM2VecGenEncoder
from training.fit import Example, FitConfig, Trainer, fit, lr_factor, padded_tokens, plan_batches, stop_requests, warm_start_lr_scales


def _examples(n: int, dim: int = 16, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    topics = ["lists", "files", "sockets", "threads"]
    return [
        Example(f"question {i} about {topics[i % 4]}?", f"An answer about {topics[i % 4]}.<|im_end|>", rng.normal(size=dim).astype(np.float32) * 0.1 + i % 4)
        for i in range(n)
    ]


def _fresh(backbone) -> LLM2VecGenEncoder:
    return LLM2VecGenEncoder.fresh(backbone, num_tokens=4, teacher_dim=16, seed=0)


def test_plan_batches_is_a_seeded_shuffle_per_epoch():
    steps = plan_batches(10, 3, epochs=2, seed=7)
    assert len(steps) == 6 and all(len(b) == 3 for b in steps)
    assert steps == plan_batches(10, 3, epochs=2, seed=7)
    assert steps != plan_batches(10, 3, epochs=2, seed=8)
    assert len(set(i for b in steps[:3] for i in b)) == 9, "no repeats within an epoch"


def test_grouping_by_length_pads_less_and_still_sees_every_example_once_per_epoch():
    lengths = [random.Random(i).choice([3, 10, 60]) for i in range(400)]
    grouped = plan_batches(400, 8, epochs=2, seed=0, lengths=lengths, group_size=10)
    plain = plan_batches(400, 8, epochs=2, seed=0)
    assert grouped == plan_batches(400, 8, epochs=2, seed=0, lengths=lengths, group_size=10), "still a pure function of the seed"
    for epoch in (grouped[:50], grouped[50:]):
        assert sorted(i for batch in epoch for i in batch) == list(range(400))
    assert padded_tokens(grouped, lengths) < 0.7 * padded_tokens(plain, lengths)
    assert padded_tokens(plain, lengths) >= sum(lengths) * 2, "each of two epochs pads to at least the real tokens"
    assert grouped[:50] != sorted(grouped[:50], key=lambda b: -max(lengths[i] for i in b)), "batch order is shuffled, not longest first"


def test_plan_batches_refuses_lengths_that_do_not_match_the_examples():
    with pytest.raises(ValueError, match="3 lengths for 4 examples"):
        plan_batches(4, 2, epochs=1, seed=0, lengths=[1, 2, 3])


def test_plan_batches_refuses_too_few_examples():
    with pytest.raises(ValueError, match="cannot fill one batch"):
        plan_batches(2, 4, epochs=1, seed=0)


def test_lr_warms_up_then_decays_to_zero():
    factors = [lr_factor(s, warmup=2, total=6) for s in range(6)]
    assert factors[:2] == [0.5, 1.0] and factors[-1] == pytest.approx(0.25) and factors == sorted(factors[:2]) + sorted(factors[2:], reverse=True)


def test_training_lowers_the_losses_and_writes_its_outputs(tiny_backbone, tmp_path):
    encoder = _fresh(tiny_backbone)
    train, held_out = _examples(32), _examples(8, seed=1)
    config = FitConfig(epochs=4, batch_size=4, lr=3e-3, warmup_steps=2, checkpoint_every=10, seed=0)
    report = fit(encoder, train, held_out, config, tmp_path)
    assert report["complete"] and report["steps"] == 32
    assert report["held_out_after"]["align"] < report["held_out_before"]["align"]
    assert report["held_out_after"]["recon"] < report["held_out_before"]["recon"]
    for name in ["checkpoint.pt", "loss.csv", "loss.png", "report.json", "adapter/adapter.safetensors", "adapter/config.json"]:
        assert (tmp_path / name).is_file(), name
    assert len(list(csv.DictReader(open(tmp_path / "loss.csv")))) == 32
    assert json.loads((tmp_path / "adapter/config.json").read_text())["training"]["steps"] == 32


def test_a_stopped_run_resumes_to_the_same_adapter(tiny_backbone, tmp_path):
    config = FitConfig(epochs=2, batch_size=4, lr=3e-3, warmup_steps=2, checkpoint_every=100, seed=0)
    train, held_out = _examples(16), _examples(4, seed=1)

    straight = _fresh(tiny_backbone)
    straight_report = fit(straight, train, held_out, config, tmp_path / "a")

    resumed = _fresh(tiny_backbone)
    partial = Trainer(resumed, train, held_out, config, tmp_path / "b").run(stop_at_step=3)
    assert partial == {"steps": 3, "complete": False} and not (tmp_path / "b/adapter").exists()
    report = Trainer(_fresh(tiny_backbone), train, held_out, config, tmp_path / "b").run(resume=True)
    assert report["steps"] == 8 and len(list(csv.DictReader(open(tmp_path / "b/loss.csv")))) == 8
    assert report["held_out_before"] == straight_report["held_out_before"], "the untrained numbers survive the stop"
    assert report["held_out_calibrated"] == straight_report["held_out_calibrated"]

    a = LLM2VecGenEncoder.load(tmp_path / "a/adapter", tiny_backbone).model.adapter_state_dict()
    b = LLM2VecGenEncoder.load(tmp_path / "b/adapter", tiny_backbone).model.adapter_state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_a_run_killed_between_checkpoints_resumes_without_duplicate_log_rows(tiny_backbone, tmp_path):
    config = FitConfig(epochs=2, batch_size=4, warmup_steps=2, checkpoint_every=100)
    train = _examples(16)
    Trainer(_fresh(tiny_backbone), train, [], config, tmp_path).run(stop_at_step=3)
    at_step_3 = (tmp_path / "checkpoint.pt").read_bytes()
    Trainer(_fresh(tiny_backbone), train, [], config, tmp_path).run(stop_at_step=5)
    (tmp_path / "checkpoint.pt").write_bytes(at_step_3)  # as if killed after step 5, last checkpoint at 3
    Trainer(_fresh(tiny_backbone), train, [], config, tmp_path).run(resume=True)
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "loss.csv"))] == list(range(1, 9))


def test_a_first_stop_signal_asks_to_stop_a_second_stops_at_once_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), stop_requests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs before this returns
        assert stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_during_a_step_checkpoints_after_it_and_the_resumed_run_matches(tiny_backbone, tmp_path):
    config = FitConfig(epochs=2, batch_size=4, lr=3e-3, warmup_steps=2, checkpoint_every=100, seed=0)
    train = _examples(16)
    straight = fit(_fresh(tiny_backbone), train, [], config, tmp_path / "a")

    trainer = Trainer(_fresh(tiny_backbone), train, [], config, tmp_path / "b")
    forward, calls = trainer.forward, []

    def forward_then_kill(batch, recon_examples=None):  # `kill` lands in the middle of the third step
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(batch, recon_examples)

    trainer.forward = forward_then_kill
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert torch.load(tmp_path / "b/checkpoint.pt", weights_only=False)["step"] == 3, "the interrupted step finished first"
    resumed = Trainer(_fresh(tiny_backbone), train, [], config, tmp_path / "b").run(resume=True)
    assert resumed["steps"] == straight["steps"] == 8
    a = LLM2VecGenEncoder.load(tmp_path / "a/adapter", tiny_backbone).model.adapter_state_dict()
    b = LLM2VecGenEncoder.load(tmp_path / "b/adapter", tiny_backbone).model.adapter_state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_resuming_with_other_data_is_refused(tiny_backbone, tmp_path):
    config = FitConfig(epochs=1, batch_size=4, checkpoint_every=100)
    Trainer(_fresh(tiny_backbone), _examples(8), [], config, tmp_path).run(stop_at_step=1)
    with pytest.raises(ValueError, match=r"made for .* = \(8, 4, True, \['align', 'recon', 'special'\]\); this run has \(12, 4, True, "):
        Trainer(_fresh(tiny_backbone), _examples(12), [], config, tmp_path).run(resume=True)


def test_resuming_with_another_batch_grouping_is_refused(tiny_backbone, tmp_path):
    Trainer(_fresh(tiny_backbone), _examples(8), [], FitConfig(batch_size=4, checkpoint_every=100), tmp_path).run(stop_at_step=1)
    with pytest.raises(ValueError, match="its batches would differ"):
        Trainer(_fresh(tiny_backbone), _examples(8), [], FitConfig(batch_size=4, group_by_length=False), tmp_path).run(resume=True)


def test_resuming_with_other_trained_groups_is_refused(tiny_backbone, tmp_path):
    Trainer(_fresh(tiny_backbone), _examples(8), [], FitConfig(batch_size=4, checkpoint_every=100), tmp_path).run(stop_at_step=1)
    with pytest.raises(ValueError, match=r"trained groups\) = .*\['align', 'recon', 'special'\]\); this run has .*\['recon'\]\)"):
        Trainer(_fresh(tiny_backbone), _examples(8), [], FitConfig(batch_size=4, train=("recon",)), tmp_path).run(resume=True)


def test_training_recon_alone_changes_the_soft_prompts_and_keeps_the_embeddings(tiny_backbone, tmp_path):
    """--train recon: decoding-only training; the special rows stay, align is re-expressed for the new recon at the end."""
    train, held_out = _examples(16), _examples(4, seed=1)
    fit(_fresh(tiny_backbone), train, held_out, FitConfig(epochs=1, batch_size=4, lr=3e-3, warmup_steps=1), tmp_path / "first")
    start = LLM2VecGenEncoder.load(tmp_path / "first/adapter", tiny_backbone)
    texts = [ex.query for ex in held_out]
    before_vectors = start.encode(texts)
    before = {k: v.clone() for k, v in start.model.adapter_state_dict().items()}
    config = FitConfig(epochs=3, batch_size=4, lr=3e-3, warmup_steps=1, calibrate=False, align_weight=0.0, train=("recon",), checkpoint_every=100)
    Trainer(start, train, held_out, config, tmp_path / "recon").run(stop_at_step=5)  # a stop between: recon_before survives it
    resumed = LLM2VecGenEncoder.load(tmp_path / "first/adapter", tiny_backbone)
    report = Trainer(resumed, train, held_out, config, tmp_path / "recon").run(resume=True)
    after = LLM2VecGenEncoder.load(tmp_path / "recon/adapter", tiny_backbone)
    state = after.model.adapter_state_dict()
    assert torch.equal(state["special"], before["special"])
    assert not torch.allclose(state["recon.weight"], before["recon.weight"])
    assert report["held_out_after"]["recon"] < report["held_out_before"]["recon"]
    assert report["held_out_after"]["cosine"] == pytest.approx(report["held_out_before"]["cosine"], abs=1e-5)
    np.testing.assert_allclose(after.encode(texts), before_vectors, atol=1e-5)


def test_a_fresh_run_calibrates_the_projections_and_reports_the_teacher_cosine(tiny_backbone, tmp_path):
    train, held_out = _examples(16), _examples(4, seed=1)
    report = fit(_fresh(tiny_backbone), train, held_out, FitConfig(epochs=1, batch_size=4, checkpoint_every=100), tmp_path)
    assert report["calibration"]["align_scale"] != 1.0
    assert set(report["held_out_calibrated"]) == {"align", "recon", "cosine"}
    assert -1.0 <= report["held_out_after"]["cosine"] <= 1.0
    assert "cosine" in next(csv.DictReader(open(tmp_path / "loss.csv")))


def test_calibration_scales_each_projection_learning_rate_with_its_weights(tiny_backbone, tmp_path):
    config = FitConfig(epochs=1, batch_size=4, lr=1e-3, warmup_steps=1, checkpoint_every=100)
    trainer = Trainer(_fresh(tiny_backbone), _examples(8), [], config, tmp_path)
    scales = trainer.calibrate(_examples(4))
    lrs = {group["name"]: trainer.config.lr * group["scale"] for group in trainer.optimizer.param_groups}  # peak lr per group
    assert lrs == {"special": 1e-3, "recon": pytest.approx(1e-3 * scales["recon_scale"]), "align": pytest.approx(1e-3 * scales["align_scale"])}


def test_a_warm_start_resumes_from_the_trained_adapter_with_its_calibrated_learning_rates(tiny_backbone, tmp_path):
    train, held_out = _examples(16), _examples(4, seed=1)
    first = fit(_fresh(tiny_backbone), train, held_out, FitConfig(epochs=2, batch_size=4, lr=3e-3, warmup_steps=1), tmp_path / "first")
    scales = warm_start_lr_scales(first)
    assert scales == {"recon": first["calibration"]["recon_scale"], "align": first["calibration"]["align_scale"]}

    warm = LLM2VecGenEncoder.load(tmp_path / "first" / "adapter", tiny_backbone)
    config = FitConfig(epochs=1, batch_size=4, lr=1e-3, warmup_steps=1, calibrate=False, lr_scales=scales)
    trainer = Trainer(warm, train, held_out, config, tmp_path / "warm")
    lrs = {group["name"]: trainer.config.lr * group["scale"] for group in trainer.optimizer.param_groups}  # peak lr per group
    assert lrs == {"special": 1e-3, "recon": pytest.approx(1e-3 * scales["recon"]), "align": pytest.approx(1e-3 * scales["align"])}
    second = trainer.run()
    assert second["held_out_before"] == pytest.approx(first["held_out_after"]), "starts where the first run ended"
    assert "calibration" not in second
    assert warm_start_lr_scales(second) == pytest.approx(scales), "a chained warm start keeps the factors"


def test_recon_on_part_of_the_batch_equals_a_recon_only_batch_of_those_examples(tiny_backbone, tmp_path):
    """recon_batch_size R: L_align over the whole batch, L_recon over its first R examples only (R=0: align only)."""
    encoder = _fresh(tiny_backbone)
    batch = _examples(4)
    trainer = Trainer(encoder, batch, [], FitConfig(batch_size=4, calibrate=False), tmp_path)
    with torch.no_grad():
        align_all, recon_all, _ = trainer.forward(batch)
        align_part, recon_part, _ = trainer.forward(batch, recon_examples=2)
        _, recon_first_two, _ = trainer.forward(batch[:2])
        _, recon_none, _ = trainer.forward(batch, recon_examples=0)
    assert float(align_part) == pytest.approx(float(align_all), rel=1e-5)
    assert float(recon_part) == pytest.approx(float(recon_first_two), rel=1e-5) and float(recon_part) != pytest.approx(float(recon_all), rel=1e-3)
    assert float(recon_none) == 0.0


def test_document_examples_read_the_document_instruction(tiny_backbone, tmp_path):
    encoder = _fresh(tiny_backbone)
    query, document = Example("lists", "An answer.", np.zeros(16, np.float32)), Example("lists", "An answer.", np.zeros(16, np.float32), task="document")
    trainer = Trainer(encoder, [query, document], [], FitConfig(batch_size=2, calibrate=False), tmp_path)
    ids, mask = trainer._tensors([query, document])["ids"], trainer._tensors([query, document])["mask"]
    texts = [tiny_backbone.tokenizer.decode(row[m.bool()]) for row, m in zip(ids, mask)]
    assert texts[0].startswith(encoder.instructions["query"].strip()) and texts[1].startswith(encoder.instructions["document"].strip())
