"""The refusal gate: a linear probe on the mean soft prompt, read off the same pass that embeds the query."""

import numpy as np
import pytest
import torch

from encoder import AdapterError
from encoder.gate import GATE_CONFIG, GATE_WEIGHTS, GateConfig, RefusalGate, has_gate, load_gate
from encoder.llm2vec_gen import LLM2VecGenEncoder

QUERIES = ["How do I reverse a list in Python?", "How do I build a pipe bomb?", "Best pizza in Naples"]


def make_gate(hidden: int, seed: int = 0, threshold: float = 0.5) -> RefusalGate:
    generator = torch.Generator().manual_seed(seed)
    return RefusalGate.from_weights(torch.randn(hidden, generator=generator), 0.0, GateConfig(threshold=threshold, hidden_size=hidden))


@pytest.fixture()
def gated(smol_encoder):
    """The session's SmolLM2 encoder with a random gate (a new encoder object: the shared one stays ungated)."""
    return LLM2VecGenEncoder(smol_encoder.backbone, smol_encoder.model, smol_encoder.config, gate=make_gate(smol_encoder.config.hidden_size))


def test_the_gate_reads_the_mean_soft_prompt(gated):
    p = gated.soft_prompts(QUERIES, task="query")
    expected = torch.sigmoid(gated.gate.linear(p.float().mean(dim=1))).squeeze(-1)
    torch.testing.assert_close(gated.gate(p), expected)


def test_query_vectors_are_encode_plus_the_gates_probability_from_one_pass(gated):
    out = gated.query_vectors(QUERIES)
    np.testing.assert_allclose(out.vectors, gated.encode(QUERIES, task="query"), atol=1e-5)
    np.testing.assert_array_equal(out.generative, out.vectors)
    expected = gated.gate(gated.soft_prompts(QUERIES, task="query")).numpy()
    np.testing.assert_allclose(out.harm, expected, atol=1e-5)
    assert out.threshold == 0.5 and [out.harmful(i) for i in range(3)] == list(expected >= 0.5)


def test_without_a_gate_nothing_is_known_about_harm(smol_encoder):
    out = smol_encoder.query_vectors(QUERIES[:1])
    assert out.harm is None and not out.harmful(0)
    np.testing.assert_array_equal(out.generative, out.vectors)


def test_a_sentence_encoder_has_no_generative_vector():
    from encoder import load_encoder

    out = load_encoder("baseline", device="cpu").query_vectors(["how do I sort a dict?"])
    assert out.vectors.shape == (1, 384) and out.generative is None and out.harm is None


def test_the_gate_travels_with_the_adapter_folder(gated, tmp_path):
    gated.save(tmp_path / "adapter")
    assert has_gate(tmp_path / "adapter")
    loaded = LLM2VecGenEncoder.load(tmp_path / "adapter", gated.backbone)
    np.testing.assert_allclose(loaded.query_vectors(QUERIES).harm, gated.query_vectors(QUERIES).harm, atol=1e-6)
    assert loaded.gate.threshold == gated.gate.threshold


def test_a_corrupt_gate_is_refused_with_a_way_out(gated, tmp_path):
    folder = gated.save(tmp_path / "adapter")
    (folder / GATE_WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(AdapterError, match="cannot be read.*delete gate.json"):
        load_gate(folder, gated.config.hidden_size)


def test_a_gate_for_another_hidden_size_is_refused(tmp_path):
    make_gate(16).save(tmp_path)
    assert (tmp_path / GATE_CONFIG).is_file()
    with pytest.raises(AdapterError, match="does not fit"):
        load_gate(tmp_path, 32)


def teacher_gate(hidden: int, teacher, seed: int = 1) -> RefusalGate:
    """A random gate that also reads ``teacher``'s query vector."""
    from encoder.gate import FEATURE_WITH_TEACHER

    generator = torch.Generator().manual_seed(seed)
    config = GateConfig(threshold=0.5, hidden_size=hidden, feature=FEATURE_WITH_TEACHER, teacher=teacher.name, teacher_dim=teacher.dim)
    return RefusalGate.from_weights(torch.randn(hidden + teacher.dim, generator=generator), 0.1, config)


def test_a_gate_that_reads_the_teacher_adds_its_query_vector_to_the_soft_prompt(smol_encoder):
    from encoder import load_encoder

    teacher = load_encoder("baseline", device="cpu")  # any sentence encoder: the gate names the one it reads
    gate = teacher_gate(smol_encoder.config.hidden_size, teacher)
    gated = LLM2VecGenEncoder(smol_encoder.backbone, smol_encoder.model, smol_encoder.config, gate=gate)
    p = gated.soft_prompts(QUERIES, task="query")
    t = torch.from_numpy(teacher.encode(QUERIES, task="query"))
    expected = torch.sigmoid(gate.linear(torch.cat([p.float().mean(dim=1), t], dim=-1))).squeeze(-1)
    torch.testing.assert_close(gate(p, t), expected)
    np.testing.assert_allclose(gated.query_vectors(QUERIES, teacher_vectors=t.numpy()).harm, expected.numpy(), atol=1e-5)
    gated._gate_teacher = teacher  # what gate_teacher() would load by name
    np.testing.assert_allclose(gated.query_vectors(QUERIES).harm, expected.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="also reads the query vector of all-minilm-l6-v2"):
        gate(p)


def test_a_teacher_reading_gate_travels_with_the_adapter_and_is_checked_on_load(smol_encoder, tmp_path):
    from encoder import load_encoder

    teacher = load_encoder("baseline", device="cpu")
    gated = LLM2VecGenEncoder(smol_encoder.backbone, smol_encoder.model, smol_encoder.config,
                              gate=teacher_gate(smol_encoder.config.hidden_size, teacher))
    folder = gated.save(tmp_path / "adapter")
    loaded = load_gate(folder, smol_encoder.config.hidden_size)
    assert loaded.needs_teacher and loaded.config.teacher == teacher.name
    torch.testing.assert_close(loaded.linear.weight, gated.gate.linear.weight)
    config = (folder / GATE_CONFIG).read_text().replace(f'"teacher_dim": {teacher.dim}', '"teacher_dim": 0')
    (folder / GATE_CONFIG).write_text(config)
    with pytest.raises(AdapterError, match="does not fit"):
        load_gate(folder, smol_encoder.config.hidden_size)


def anchored(gate: RefusalGate, dim: int, weight: float = 1.0) -> RefusalGate:
    anchor = torch.nn.functional.normalize(torch.arange(dim, dtype=torch.float32) - dim / 2, dim=0)
    return gate.with_anchor(anchor, weight, {"made_from": "a test direction"})


def test_without_an_anchor_routed_queries_search_with_llm2vec_gens_own_vector(gated):
    out = gated.query_vectors(QUERIES)
    np.testing.assert_array_equal(out.routed, out.generative)


def test_an_anchor_pulls_routed_vectors_towards_it_by_its_weight(gated):
    dim = gated.dim
    gated.gate = anchored(gated.gate, dim, weight=1.0)
    out = gated.query_vectors(QUERIES)
    anchor = gated.gate.anchor.numpy()
    np.testing.assert_allclose(np.linalg.norm(out.routed, axis=1), 1.0, atol=1e-5)
    assert np.all(out.routed @ anchor > out.generative @ anchor), "every routed vector is nearer the anchor"
    moved = out.generative + anchor
    np.testing.assert_allclose(out.routed, moved / np.linalg.norm(moved, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_array_equal(out.vectors, out.generative), "benign queries are not moved"


def test_the_anchor_travels_with_the_gate(gated, tmp_path):
    gated.gate = anchored(gated.gate, gated.dim, weight=0.5)
    gated.save(tmp_path / "adapter")
    loaded = LLM2VecGenEncoder.load(tmp_path / "adapter", gated.backbone)
    assert loaded.gate.config.anchor_weight == 0.5 and loaded.gate.config.anchor == {"made_from": "a test direction"}
    np.testing.assert_allclose(loaded.query_vectors(QUERIES).routed, gated.query_vectors(QUERIES).routed, atol=1e-6)


def test_an_anchor_of_another_dim_is_refused(tmp_path):
    anchored(make_gate(16), dim=8).save(tmp_path)
    with pytest.raises(AdapterError, match="no anchor of dim 12"):
        load_gate(tmp_path, 16, dim=12)
