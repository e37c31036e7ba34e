"""Encode paths (``encoder.encode_paths``): a path computes the eager vectors, and only inside encode."""

import copy

import numpy as np
import pytest
import torch

from encoder.encode_paths import PathModule, base_model_of, build_path, install_path, use_path
from encoder.llm2vec_gen import LLM2VecGenEncoder
from encoder.packed import packing_works

TEXTS = ["How do I reverse a list in Python?", "ok", "Explain the difference between a process and a thread, with examples."]


@pytest.fixture()
def tiny_encoder(tiny_backbone):
    return LLM2VecGenEncoder.fresh(tiny_backbone, num_tokens=4, teacher_dim=16, max_length=64)


def test_path_module_runs_fast_only_when_active(tiny_encoder):
    base = base_model_of(tiny_encoder)
    calls = []
    module = PathModule(base, lambda **kwargs: calls.append(kwargs) or base(**kwargs), "spy")
    reference = tiny_encoder.encode(TEXTS)
    with use_path(tiny_encoder, module):
        vectors = tiny_encoder.encode(TEXTS)
    assert calls and all("inputs_embeds" in c for c in calls)
    np.testing.assert_allclose(vectors, reference, atol=1e-6)
    assert tiny_encoder.model.lm.model is base  # restored
    calls.clear()
    module(inputs_embeds=torch.zeros(1, 2, base.config.hidden_size))  # not active: eager
    assert not calls
    assert module.embed_tokens is base.embed_tokens and module.config is base.config


def test_rejected_paths_are_not_product_paths_and_still_run_in_the_benchmark(tiny_encoder):
    """torch.compile and int8 were measured and rejected (docs/benchmarks.md): GENSEARCH_ENCODE_PATH does not offer
    them; benchmarks/encode_paths.py still builds them to measure again."""
    import importlib.util
    from pathlib import Path

    for name in ("int8", "compile", "onnx-int8"):
        with pytest.raises(ValueError, match="unknown encode path"):
            build_path(name, tiny_encoder)
    spec = importlib.util.spec_from_file_location("bench_encode_paths", Path(__file__).parents[2] / "benchmarks" / "encode_paths.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    reference = tiny_encoder.encode(TEXTS)
    module = bench.build_candidate("int8", tiny_encoder, onnx_dir=None)
    with use_path(tiny_encoder, module):
        vectors = tiny_encoder.encode(TEXTS)
    assert vectors.shape == reference.shape and np.isfinite(vectors).all()
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS), reference, atol=1e-6)


def test_bf16_path_computes_in_bf16_on_a_copy_and_keeps_the_reference_fp32(tiny_encoder):
    reference = tiny_encoder.encode(TEXTS, task="document")
    module = build_path("bf16", tiny_encoder)
    assert next(module.fast.model.parameters()).dtype == torch.bfloat16
    assert all(b.dtype == torch.float32 for b in module.fast.model.buffers())  # rotary frequencies stay fp32
    assert base_model_of(tiny_encoder).embed_tokens.weight.dtype == torch.float32  # the eager model is untouched
    with use_path(tiny_encoder, module):
        vectors = tiny_encoder.encode(TEXTS, task="document")
    assert vectors.dtype == reference.dtype and ((vectors * reference).sum(axis=1) > 0.95).all()
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, task="document"), reference, atol=1e-6)


def test_bf16_path_adds_nothing_to_a_backbone_already_in_bf16(tiny_encoder):
    encoder = copy.deepcopy(tiny_encoder)  # the tiny backbone is the session's: cast a copy
    encoder.model.lm.to(torch.bfloat16)
    assert build_path("bf16", encoder) is None
    assert install_path(encoder, "bf16") is None and not hasattr(encoder, "encode_path")


def test_onnx_path_reproduces_eager_vectors_behind_encode(tiny_encoder, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    reference = tiny_encoder.encode(TEXTS, task="document")
    install_path(tiny_encoder, "onnx", onnx_dir=tmp_path)
    vectors = tiny_encoder.encode(TEXTS, task="document")
    assert ((vectors * reference).sum(axis=1) >= 0.999).all()
    assert tiny_encoder.model.lm.model is base_model_of(tiny_encoder)  # swapped in per batch only
    tiny_encoder.cache_instruction = False  # no prefix keys/values: an empty past in the graph
    assert ((tiny_encoder.encode(TEXTS, task="document") * reference).sum(axis=1) >= 0.999).all()
    assert len(tiny_encoder.decode(TEXTS[:1], max_new_tokens=3)) == 1  # generation stays eager


def test_packed_path_reproduces_eager_vectors_on_a_copy(tiny_encoder):
    reference = tiny_encoder.encode(TEXTS, task="document")
    module = build_path("packed", tiny_encoder)
    if module is None:
        pytest.skip("no oneDNN weight packing in this torch build")
    assert not any(isinstance(m, torch.nn.Linear) for m in module.fast.model.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in base_model_of(tiny_encoder).modules())  # the eager model is untouched
    with use_path(tiny_encoder, module):
        vectors = tiny_encoder.encode(TEXTS, task="document")
    np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_packed_path_is_one_copy_per_backbone_and_steps_aside_for_a_cast_model(tiny_encoder):
    module = build_path("packed", tiny_encoder)
    if module is None:
        pytest.skip("no oneDNN weight packing in this torch build")
    assert build_path("packed", copy.copy(tiny_encoder)).fast.model is module.fast.model  # encoders on one backbone share it
    base = base_model_of(tiny_encoder)
    rows = torch.randn(1, 3, base.config.hidden_size, dtype=torch.float64)  # as after model.double(): not what was packed
    with torch.no_grad():
        base.double()
        try:
            out = module.fast(inputs_embeds=rows).last_hidden_state
        finally:
            base.float()
    assert out.dtype == torch.float64


def test_packed_path_adds_nothing_where_packing_does_not_work(monkeypatch, tiny_encoder):
    import encoder.encode_paths as paths

    monkeypatch.setattr(paths, "packing_works", lambda device, dtype: False)
    encoder = copy.copy(tiny_encoder)
    assert build_path("packed", encoder) is None
    assert install_path(encoder, "packed") is None and not hasattr(encoder, "encode_path")


def test_setting_default_is_packed_and_eager_and_onnx_are_opt_in(monkeypatch, tiny_encoder, tmp_path):
    from encoder.loading import _with_encode_path
    from encoder.settings import Settings

    monkeypatch.delenv("GENSEARCH_ENCODE_PATH", raising=False)
    assert Settings(_env_file=None).encode_path == "packed"
    with pytest.raises(ValueError):
        build_path("nope", None)
    reference = tiny_encoder.encode(TEXTS)
    eager = copy.copy(tiny_encoder)
    assert _with_encode_path(eager, Settings(_env_file=None, encode_path="eager")) is eager and not hasattr(eager, "encode_path")
    packed = _with_encode_path(copy.copy(tiny_encoder), Settings(_env_file=None))
    if packing_works(torch.device("cpu"), torch.float32):
        assert packed.encode_path == "packed"
    np.testing.assert_allclose(packed.encode(TEXTS), reference, atol=1e-5)
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    _with_encode_path(tiny_encoder, Settings(_env_file=None, encode_path="onnx", cache_dir=tmp_path))
    assert tiny_encoder.encode_path == "onnx" and any((tmp_path / "onnx").rglob("model.onnx"))
    assert ((tiny_encoder.encode(TEXTS) * reference).sum(axis=1) >= 0.999).all()
