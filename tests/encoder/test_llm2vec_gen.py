"""LLM2Vec-Gen on the real SmolLM2-135M backbone: batching, truncation, decode and logit lens."""

import numpy as np

TEXTS = [
    "How do I reverse a list in Python?",
    "What is the capital of France?",
    "ok",
    "Explain the difference between a process and a thread in an operating system, with examples of each.",
    "Best pizza in Naples",
]


def test_encode_returns_normalised_float32_rows(smol_encoder):
    vectors = smol_encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), smol_encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = smol_encoder.encode(TEXTS, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_result_does_not_depend_on_batch_neighbours(smol_encoder):
    batched = smol_encoder.encode(TEXTS, batch_size=5)
    alone = np.stack([smol_encoder.encode(text)[0] for text in TEXTS])
    cosine = (batched * alone).sum(axis=1)
    assert cosine.min() >= 0.999, cosine


def test_task_selects_a_different_instruction(smol_encoder):
    query = smol_encoder.encode(TEXTS[:1], task="query")
    document = smol_encoder.encode(TEXTS[:1], task="document")
    assert float((query @ document.T)[0, 0]) < 0.99999


def test_long_input_is_truncated_before_the_special_tokens(smol_encoder):
    huge = "word " * 5000
    ids = smol_encoder.tokenize([huge], "query")[0]
    assert len(ids) == smol_encoder.max_length - smol_encoder.model.num_tokens
    vector = smol_encoder.encode(huge)
    assert vector.shape == (1, smol_encoder.dim) and np.isfinite(vector).all()


def test_empty_list_gives_an_empty_matrix(smol_encoder):
    assert smol_encoder.encode([]).shape == (0, smol_encoder.dim)


def test_decode_returns_one_text_per_input_and_respects_the_budget(smol_encoder):
    decoded = smol_encoder.decode(TEXTS[:3], max_new_tokens=8, batch_size=3)
    assert len(decoded) == 3 and all(isinstance(d, str) for d in decoded)
    tokenizer = smol_encoder.backbone.tokenizer
    assert all(len(tokenizer(d, add_special_tokens=False)["input_ids"]) <= 9 for d in decoded)


def test_decode_of_soft_prompts_equals_decode_of_text(smol_encoder):
    prompts = smol_encoder.soft_prompts(TEXTS[:2])
    assert smol_encoder.decode(prompts, max_new_tokens=6) == smol_encoder.decode(TEXTS[:2], max_new_tokens=6)


def test_logit_lens_gives_top_k_tokens_per_special_position(smol_encoder):
    lens = smol_encoder.logit_lens(TEXTS[:2], top_k=3)
    assert len(lens) == 2 and len(lens[0]) == smol_encoder.model.num_tokens
    assert all(len(position) == 3 for position in lens[0])
    words = smol_encoder.lens_words(TEXTS[:2], limit=5)
    assert len(words) == 2 and all(len(w) <= 5 for w in words)
    assert not any("<|" in word for row in words for word in row)


def test_encode_with_lens_matches_encode_and_lens_words(smol_encoder):
    vectors, words = smol_encoder.encode_with_lens(TEXTS[:3], task="document")
    np.testing.assert_allclose(vectors, smol_encoder.encode(TEXTS[:3], task="document"), atol=1e-5)
    assert words == smol_encoder.lens_words(TEXTS[:3], task="document")


def test_cached_instruction_gives_the_states_of_the_full_prompt(smol_encoder):
    texts = [*TEXTS, ""]
    for task in ("query", "document"):
        smol_encoder.cache_instruction = False
        try:
            full = smol_encoder.special_states(texts, task)
        finally:
            smol_encoder.cache_instruction = True
        cached = smol_encoder.special_states(texts, task)
        scale = full.abs().max()
        assert (cached - full).abs().max() <= 1e-5 * scale


def test_the_cached_instruction_prefix_is_the_part_every_tokenised_text_shares(smol_encoder):
    token_ids = smol_encoder.tokenize(TEXTS, "query")
    prefix = smol_encoder._instruction_prefix(token_ids)
    instruction = smol_encoder.backbone.tokenizer(smol_encoder.instructions["query"])["input_ids"]
    assert len(prefix) >= len(instruction) - 1 and all(list(prefix) == t[: len(prefix)] for t in token_ids)
