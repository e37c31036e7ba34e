"""Generation engines on the real SmolLM2 backbone: transformers batching, llama.cpp on the pinned GGUF."""

import pytest

from encoder.fetch import GGUF, ensure_gguf, sha256_file
from encoder.generation import LlamaCppEngine, TransformersEngine, load_engine, resolve_engine
from encoder.registry import get_spec
from encoder.settings import get_settings

QUERIES = ["What is 2+2?", "Name a primary colour.", "Say hello.", "What is the capital of France?"]


def test_batched_answers_match_single_answers(smol_backbone):
    """Left padding must not change greedy answers."""
    engine = TransformersEngine(smol_backbone, batch_size=4)
    batched = engine.answer(QUERIES[:2], system=None, max_new_tokens=12)
    single = [engine.answer([q], system=None, max_new_tokens=12)[0] for q in QUERIES[:2]]
    assert [a.response for a in batched] == [a.response for a in single]


def test_empty_input_needs_no_model_call(smol_backbone):
    assert TransformersEngine(smol_backbone).answer([], system=None, max_new_tokens=4) == []


def test_auto_is_ctranslate2_for_a_registry_backbone_on_cpu(smol_backbone, tiny_backbone):
    assert resolve_engine("auto", smol_backbone) == "ctranslate2"
    assert resolve_engine("auto", tiny_backbone) == "transformers", "no pinned GGUF for a model built from a config"
    with pytest.raises(ValueError, match="unknown generation engine"):
        load_engine("vllm", smol_backbone, settings=get_settings())


def test_the_gguf_is_the_pinned_file(smol_backbone):
    path = ensure_gguf("test", get_settings())
    assert path.name == GGUF and sha256_file(path) == get_spec("test").sha256


@pytest.fixture(scope="module")
def llama(smol_backbone):
    return LlamaCppEngine(smol_backbone, ensure_gguf("test", get_settings()), parallel=4, context_per_slot=512, threads=2)


def test_llama_cpp_answers_like_transformers(smol_backbone, llama):
    """Same prompt tokens, same EOS handling; the GGUF's quantised matmuls may change a late token, not the answer."""
    ours = llama.answer(QUERIES, system=None, max_new_tokens=16)
    ref = TransformersEngine(smol_backbone, batch_size=4).answer(QUERIES, system=None, max_new_tokens=16)
    assert len(ours) == len(QUERIES)
    for a in ours:
        assert a.n_tokens <= 16 and a.finished == a.response.endswith(smol_backbone.tokenizer.eos_token)
    same_start = sum(a.response[:4] == b.response[:4] for a, b in zip(ours, ref))
    assert same_start >= 3, [(a.response, b.response) for a, b in zip(ours, ref)]


def test_llama_cpp_is_order_and_concurrency_invariant(llama):
    together = llama.answer(QUERIES, system="Be brief.", max_new_tokens=10)
    alone = [llama.answer([q], system="Be brief.", max_new_tokens=10)[0] for q in reversed(QUERIES)][::-1]
    assert [a.response for a in together] == [a.response for a in alone]


def test_llama_cpp_refuses_a_prompt_longer_than_its_slot(llama):
    with pytest.raises(ValueError, match="exceeds"):
        llama.answer(["word " * 600], system=None, max_new_tokens=8)


def test_ctranslate2_answers_like_transformers(smol_backbone):
    """int8 weights converted once from the cached folder; the shared system turn runs as a static prompt."""
    from encoder.generation import load_engine

    engine = load_engine("ctranslate2", smol_backbone, settings=get_settings(), batch_size=4, threads=2)
    ours = engine.answer(QUERIES, system="Be brief.", max_new_tokens=16)
    ref = TransformersEngine(smol_backbone, batch_size=4).answer(QUERIES, system="Be brief.", max_new_tokens=16)
    for a in ours:
        assert a.n_tokens <= 16 and a.finished == a.response.endswith(smol_backbone.tokenizer.eos_token)
    assert sum(a.response[:4] == b.response[:4] for a, b in zip(ours, ref)) >= 3, [(a.response, b.response) for a, b in zip(ours, ref)]


def test_common_prefix():
    from encoder.generation.engines import common_prefix

    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2 and common_prefix([[5], [6]]) == 0
