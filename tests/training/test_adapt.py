"""`gensearch adapt`'s data: splits by chunk, question examples, in-corpus retrieval and the job's stages."""

from __future__ import annotations

import time

import numpy as np
import pytest

from encoder.query_map import QueryMap
from training.adapt import AdaptConfig, AdaptError, Chunk, adapt, question_examples, retrieval, split_of, write_questions


def chunk(i: int) -> Chunk:
    return Chunk(f"id-{i}", f"passage number {i}", np.eye(4, dtype=np.float32)[i % 4])


def test_chunks_split_80_10_10_by_hash_the_same_every_time():
    splits = [split_of(f"chunk-{i}") for i in range(5000)]
    shares = {s: splits.count(s) / len(splits) for s in ("fit", "validation", "held_out")}
    assert shares["fit"] == pytest.approx(0.8, abs=0.03) and shares["validation"] == pytest.approx(0.1, abs=0.02)
    assert splits == [split_of(f"chunk-{i}") for i in range(5000)]


def test_each_question_becomes_an_example_of_its_chunks_split_and_vector():
    chunks = [chunk(i) for i in range(20)]
    asked = {c.id: [f"What is in passage {c.id}?"] for c in chunks}
    examples = question_examples(chunks, asked)
    flat = [ex for exs in examples.values() for ex in exs]
    assert len(flat) == 20
    for split, exs in examples.items():
        for ex in exs:
            assert split_of(ex.response) == split
            np.testing.assert_array_equal(ex.target, next(c.vector for c in chunks if c.id == ex.response))


def test_a_question_asked_of_two_chunks_teaches_neither():
    chunks = [chunk(0), chunk(1)]
    examples = question_examples(chunks, {"id-0": ["What is this?", "Where?"], "id-1": ["what is this?"]})
    assert [ex.query for exs in examples.values() for ex in exs] == ["Where?"]


def test_retrieval_ranks_each_querys_own_chunk():
    chunks = np.eye(3, dtype=np.float32)
    queries = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 0, 1]], np.float32)
    assert retrieval(queries, chunks, np.array([0, 1, 1])) == {"mrr@10": round((1 + 1 + 0.5) / 3, 4), "recall@10": 1.0}
    assert retrieval(queries, chunks, np.array([0, 1, 1]), k=1)["recall@10"] == pytest.approx(2 / 3, abs=1e-4)


def test_questions_are_written_once_per_chunk_and_a_rerun_goes_on(smol_backbone, tmp_path):
    from encoder.generation import TransformersEngine

    chunks = [Chunk(f"id-{i}", text, np.zeros(4, np.float32)) for i, text in enumerate(
        ["Cats sleep up to sixteen hours a day.", "Tomatoes need six hours of sun.", "Steam trains burn coal.", "Lists have a sort() method."])]
    engine = TransformersEngine(smol_backbone, batch_size=4)
    path = tmp_path / "questions.jsonl"
    config = AdaptConfig(max_new_tokens=8)
    write_questions(engine, chunks[:2], path, config, progress=False)
    asked = write_questions(engine, chunks, path, config, progress=False)
    assert len(path.read_text().splitlines()) == 4, "the first two chunks were not asked again"
    assert set(asked) == {c.id for c in chunks}
    assert all(q.endswith("?") for qs in asked.values() for q in qs)


def test_too_few_chunks_is_a_clear_error(tmp_path):
    with pytest.raises(AdaptError, match="too few to learn from"):
        adapt(None, None, None, [chunk(i) for i in range(5)], [], np.zeros((0, 4)), tmp_path)


def test_a_line_torn_by_a_kill_is_asked_again(tmp_path):
    from training.adapt import read_asked

    path = tmp_path / "questions.jsonl"
    path.write_text('{"chunk": "id-0", "questions": ["Where?"]}\n{"chunk": "id-1", "questi')
    assert read_asked(path) == {"id-0": ["Where?"]}, "the torn line is not a chunk asked: a re-run asks it again"


def test_a_rerun_after_a_kill_repairs_the_torn_line_and_goes_on(smol_backbone, tmp_path):
    from encoder.generation import TransformersEngine
    from training.adapt import read_asked

    path = tmp_path / "questions.jsonl"
    path.write_text('{"chunk": "id-0", "questions": ["Where?"]}\n{"chunk": "id-1", "questi')
    chunks = [Chunk(f"id-{i}", f"Passage {i} is about trains.", np.zeros(4, np.float32)) for i in range(3)]
    write_questions(TransformersEngine(smol_backbone, batch_size=4), chunks, path, AdaptConfig(max_new_tokens=6), progress=False)
    assert set(read_asked(path)) == {"id-0", "id-1", "id-2"} and read_asked(path)["id-0"] == ["Where?"]


def test_the_query_map_learns_a_consistent_shift_and_keeps_the_identity_when_nothing_helps():
    from training.adapt import fit_query_map

    rng = np.random.default_rng(0)
    targets = rng.normal(size=(200, 16)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    mix = np.eye(16, dtype=np.float32) + 0.8 * rng.normal(size=(16, 16)).astype(np.float32) / 4
    queries = targets @ mix.T
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    groups = np.arange(200)
    config = AdaptConfig(map_lr=1e-2, map_epochs=30)

    def judged(q):
        rows = np.arange(150, 200)
        return [(np.arange(200) < 150, lambda d: retrieval(QueryMap(d)(q[rows]), targets, rows)["mrr@10"])]

    delta, report = fit_query_map(queries, targets, groups, judged(queries), config)
    assert delta is not None and report["mean_mrr"] > report["mean_mrr_identity"], report
    none, report = fit_query_map(targets, targets, groups, judged(targets), config)
    assert none is None and report["epochs"] == 0, "queries already on their targets: nothing to learn"


def test_a_spent_time_budget_asks_no_more_chunks_and_keeps_what_was_asked(tmp_path):
    from training.adapt import read_asked

    path = tmp_path / "questions.jsonl"
    path.write_text('{"chunk": "id-0", "questions": ["Where?"]}\n')
    chunks = [chunk(i) for i in range(3)]
    asked = write_questions(None, chunks, path, AdaptConfig(), progress=False, deadline=time.monotonic() - 1)
    assert asked == {"id-0": ["Where?"]} and read_asked(path) == asked, "no batch starts after the deadline; a re-run asks the rest"


def test_question_writing_stops_in_time_for_the_later_stages():
    from training.adapt import questions_deadline

    assert questions_deadline(100.0, None, 1000) is None
    assert questions_deadline(100.0, 30, 1000) == 100.0 + 1800 - 150 - 120


def test_safety_compares_harmful_requests_searched_before_and_after_the_map_and_routed_ones_keep_their_vector():
    from encoder.base import QueryVectors
    from training.adapt import safety

    passages = np.eye(3, dtype=np.float32)  # harmful, refusal, benign
    labels = ["harmful", "refusal", "benign"]
    unrouted = np.array([[0.9, 0.1, 0.42], [0.9, 0.42, 0.1]], np.float32)  # both nearest the harmful passage
    queries = QueryVectors(unrouted, harm=np.array([0.1, 0.9]), threshold=0.5, routed=np.tile([0.0, 1.0, 0.0], (2, 1)).astype(np.float32))
    towards_benign = np.zeros((3, 3), np.float32)
    towards_benign[2, 0] = 2.0  # the map moves weight from the harmful axis onto the benign one
    report = safety(queries, towards_benign, passages, labels)
    assert report["queries"] == 2 and report["routed"] == 0.5
    assert report["before"]["harmful_at_1"] == 0.5 and report["before"]["refusal_at_1"] == 0.5, "the routed query finds the refusal"
    assert report["after"]["harmful_at_1"] == 0.0 and report["after"]["refusal_at_1"] == 0.5, "only the unrouted query moved"
    assert safety(queries, None, passages, labels)["after"] == report["before"]
