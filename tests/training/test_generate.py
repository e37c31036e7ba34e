"""Training responses on the real SmolLM2 backbone: file rows, batching plan, resumption after a kill."""

import json

import pytest

from encoder.generation import TransformersEngine
from training.generate import generate_responses, plan_batches
from training.jsonl import read_jsonl

QUERIES = ["What is 2+2?", "Name a primary colour.", "Say hello.", "What is the capital of France?"]


def _rows(queries=QUERIES):
    return [{"id": f"q{i}", "query": q, "source": "chatterbot/x", "split": "train"} for i, q in enumerate(queries)]


@pytest.fixture(scope="module")
def engine(smol_backbone):
    return TransformersEngine(smol_backbone, batch_size=2)


def test_plan_batches_covers_every_row_once_sorted_within_chunks():
    rows = [{"id": str(i)} for i in range(10)]
    lengths = [9, 1, 8, 2, 7, 3, 6, 4, 5, 0]
    batches = list(plan_batches(rows, lengths, batch_size=2, chunk_batches=2))
    assert sorted(r["id"] for b in batches for r in b) == sorted(r["id"] for r in rows)
    assert [r["id"] for r in batches[0]] == ["1", "3"], "first chunk (rows 0-3) sorted by length"


def test_generation_resumes_after_interruption(engine, smol_backbone, tmp_path):
    out = tmp_path / "responses.jsonl"
    generate_responses(_rows(), out, engine, system="safety", max_new_tokens=8, batch_size=2, progress=False)
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert first["generator"] == smol_backbone.name and first["system"] == "safety" and first["max_new_tokens"] == 8
    assert first["engine"] == "transformers"
    assert first["finished"] == first["response"].endswith(smol_backbone.tokenizer.eos_token)

    # Simulate a kill: two complete rows plus a torn third line.
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    stats = generate_responses(_rows(), out, engine, system="safety", max_new_tokens=8, batch_size=2, progress=False)
    assert stats["answered"] == 2
    ids = [r["id"] for r in read_jsonl(out)]
    assert sorted(ids) == ["q0", "q1", "q2", "q3"] and len(ids) == 4


def test_resume_refuses_different_settings(engine, tmp_path):
    out = tmp_path / "responses.jsonl"
    generate_responses(_rows()[:1], out, engine, system="safety", max_new_tokens=4, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="same settings"):
        generate_responses(_rows(), out, engine, system="default", max_new_tokens=4, batch_size=1, progress=False)


def test_sources_named_by_skip_sources_are_not_answered_from_then_on(engine, tmp_path):
    rows = _rows() + [{"id": "x9", "query": "Say yes.", "source": "evals/yes", "split": "train"}]
    seen_sizes = []

    def skip(answered):  # after the first batch, name every source already answered
        seen_sizes.append(len(answered))
        return {r["source"] for r in answered}

    out = tmp_path / "responses.jsonl"
    stats = generate_responses(rows, out, engine, max_new_tokens=4, batch_size=2, progress=False, skip_sources=skip)
    answered = [r["id"] for r in read_jsonl(out)]
    assert seen_sizes[0] == 0 and len(answered) + stats["skipped"] == len(rows) and stats["answered"] == len(answered)
    assert stats["skipped"] > 0 and len(answered) < len(rows)


def test_packed_responses_are_sorted_compressed_and_seed_a_fresh_run(tmp_path, monkeypatch):
    import training.generate as generate

    rows = [{"id": "b", "query": "q2", "generator": "g"}, {"id": "a", "query": "q1", "generator": "g"}]
    source = tmp_path / "responses.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(generate, "SHIPPED_RESPONSES", tmp_path / "shipped")
    packed = generate.shipped_responses("g")
    assert generate.pack_responses(source, packed) == 2
    assert packed.read_bytes()[:2] == b"\x1f\x8b", "gzip"
    assert [r["id"] for r in read_jsonl(packed)] == ["a", "b"]
    first = packed.read_bytes()
    generate.pack_responses(source, packed)
    assert packed.read_bytes() == first, "same rows, same bytes (no timestamp): a re-pack makes no diff"

    fresh = tmp_path / "run" / "responses.jsonl"
    assert generate.seed_from_shipped(fresh, "g") == 2 and [r["id"] for r in read_jsonl(fresh)] == ["a", "b"]
    assert generate.seed_from_shipped(fresh, "g") == 0, "an existing run file is never overwritten"
    assert generate.seed_from_shipped(tmp_path / "other.jsonl", "unknown-generator") == 0
