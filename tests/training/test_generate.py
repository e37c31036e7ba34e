"""Response generation on the real SmolLM2 backbone: EOS handling, batching, resumption after a kill."""

import json

import pytest

from training.generate import (
    SAFETY_SYSTEM_PROMPT,
    answer_batch,
    chat_prompts,
    generate_responses,
    plan_batches,
    resolve_system,
    split_answer,
)
from training.jsonl import read_jsonl

QUERIES = ["What is 2+2?", "Name a primary colour.", "Say hello.", "What is the capital of France?"]


def _rows(queries=QUERIES):
    return [{"id": f"q{i}", "query": q, "source": "chatterbot/x", "split": "train"} for i, q in enumerate(queries)]


def test_resolve_system_presets_and_literal():
    assert resolve_system("safety") == ("safety", SAFETY_SYSTEM_PROMPT)
    assert resolve_system("default") == ("default", None)
    label, text = resolve_system("Be terse.")
    assert label.startswith("custom-") and text == "Be terse."


def test_chat_prompts_use_the_template_and_system(smol_backbone):
    prompt = chat_prompts(smol_backbone.tokenizer, ["hi"], "Be terse.")[0]
    assert "Be terse." in prompt and prompt.rstrip().endswith("assistant")


def test_split_answer_appends_the_real_eos(smol_backbone):
    tok = smol_backbone.tokenizer
    eos = tok.eos_token_id
    ids = tok.encode("Hello there", add_special_tokens=False)
    done = split_answer(ids + [eos, eos, eos], {eos}, tok)
    assert done.finished and done.response == "Hello there" + tok.eos_token and done.eos == tok.eos_token
    assert done.n_tokens == len(ids) + 1
    cut = split_answer(ids, {eos}, tok)
    assert not cut.finished and cut.response == "Hello there" and cut.eos == ""


def test_plan_batches_covers_every_row_once_sorted_within_chunks():
    rows = [{"id": str(i)} for i in range(10)]
    lengths = [9, 1, 8, 2, 7, 3, 6, 4, 5, 0]
    batches = list(plan_batches(rows, lengths, batch_size=2, chunk_batches=2))
    assert sorted(r["id"] for b in batches for r in b) == sorted(r["id"] for r in rows)
    assert [r["id"] for r in batches[0]] == ["1", "3"], "first chunk (rows 0-3) sorted by length"


def test_batched_answers_match_single_answers(smol_backbone):
    """Left padding must not change greedy answers."""
    batched = answer_batch(smol_backbone, QUERIES[:2], system=None, max_new_tokens=12)
    single = [answer_batch(smol_backbone, [q], system=None, max_new_tokens=12)[0] for q in QUERIES[:2]]
    assert [a.response for a in batched] == [a.response for a in single]


def test_generation_resumes_after_interruption(smol_backbone, tmp_path):
    out = tmp_path / "responses.jsonl"
    generate_responses(_rows(), out, smol_backbone, system="safety", max_new_tokens=8, batch_size=2, progress=False)
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert first["generator"] == smol_backbone.name and first["system"] == "safety" and first["max_new_tokens"] == 8
    assert first["finished"] == first["response"].endswith(smol_backbone.tokenizer.eos_token)

    # Simulate a kill: two complete rows plus a torn third line.
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    stats = generate_responses(_rows(), out, smol_backbone, system="safety", max_new_tokens=8, batch_size=2, progress=False)
    assert stats["answered"] == 2
    ids = [r["id"] for r in read_jsonl(out)]
    assert sorted(ids) == ["q0", "q1", "q2", "q3"] and len(ids) == 4


def test_resume_refuses_different_settings(smol_backbone, tmp_path):
    out = tmp_path / "responses.jsonl"
    generate_responses(_rows()[:1], out, smol_backbone, system="safety", max_new_tokens=4, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="same settings"):
        generate_responses(_rows(), out, smol_backbone, system="default", max_new_tokens=4, batch_size=1, progress=False)
