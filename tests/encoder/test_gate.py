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
