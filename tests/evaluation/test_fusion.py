"""The teacher-weight sweep of the fused mode: development sets from the training sources, one encode per text."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder import load_encoder
from encoder.asymmetric import AsymmetricEncoder
from evaluation.fusion import DevSet, chatterbot_dev, markdown, responses_dev, sweep
from training.queries import assign_split, query_id

PAIRS = [
    ("What is AI?", "Artificial intelligence is the study of machines that think."),
    ("what is  ai?", "AI is a branch of computer science."),  # the same question, normalised: one query, two answers
    ("Do you like music?", "AI is a branch of computer science."),  # an answer shared by two questions: one passage
    ("Tell me a joke", "Why did the chicken cross the road?"),
]


def test_chatterbot_dev_has_one_query_per_distinct_question_and_one_passage_per_distinct_answer():
    dev = chatterbot_dev(PAIRS, split=None)
    assert dev.queries == ["What is AI?", "Do you like music?", "Tell me a joke"]
    assert len(dev.passages) == 3
    assert dev.relevant[0] == {"chatterbot/0", "chatterbot/1"} and dev.relevant[1] == {"chatterbot/1"}


def test_chatterbot_dev_splits_questions_as_training_does_and_keeps_every_answer_as_a_passage():
    held = chatterbot_dev(PAIRS, split="heldout", heldout_fraction=0.5)
    expected = [q for q in ("What is AI?", "Do you like music?", "Tell me a joke") if assign_split(query_id(q), 0, 0.5) == "heldout"]
    assert held.queries == expected
    assert len(held.passages) == 3  # distractors include the train split's answers


def test_responses_dev_asks_held_out_queries_for_their_own_response_among_distractors():
    rows = [
        {"id": "h1", "query": "How do I sort a list?", "split": "heldout", "response": "Use sorted(xs) or xs.sort() to sort a list in place.<e>", "eos": "<e>"},
        {"id": "h2", "query": "Letter?", "split": "heldout", "response": "B<e>", "eos": "<e>"},  # one word: no passage
        *({"id": f"t{i}", "query": f"q{i}", "split": "train", "response": f"an answer of more than eight words, number {i}", "eos": ""} for i in range(5)),
    ]
    dev = responses_dev(rows, distractors=3)
    assert dev.queries == ["How do I sort a list?"] and dev.relevant == [{"h1"}]
    assert dev.passage_ids[0] == "h1" and len(dev.passage_ids) == 4
    assert dev.passages[0].endswith("in place.")  # the EOS string is not part of the passage


def test_responses_dev_makes_one_passage_of_a_repeated_refusal_relevant_to_each_query_that_got_it():
    refusal = "I'm sorry, but I can't assist with that request."
    rows = [
        {"id": "h1", "query": "How do I pick a lock?", "split": "heldout", "response": refusal, "eos": ""},
        {"id": "h2", "query": "How do I hotwire a car?", "split": "heldout", "response": refusal, "eos": ""},
        {"id": "t1", "query": "How do I make a weapon?", "split": "train", "response": refusal, "eos": ""},
    ]
    dev = responses_dev(rows, distractors=1)
    assert dev.passage_ids == ["h1"] and dev.relevant == [{"h1"}, {"h1"}]


@pytest.fixture(scope="module")
def fused(smol_encoder):
    return AsymmetricEncoder(smol_encoder, load_encoder("teacher", device="cpu"))


def test_the_sweep_spans_llm2vec_gen_alone_to_the_teacher_alone(fused):
    dev = DevSet(
        "tiny", ["How do I reverse a list in Python?", "Where is the best pizza?"], [{"p0"}, {"p1"}], ["p0", "p1", "p2"],
        ["Use reversed(xs) or xs[::-1] to reverse a list.", "Naples is known for its Neapolitan pizza.", "Tea is a drink."],
    )
    result = sweep(fused, dev, weights=(0.0, 1.0, math.inf))
    assert set(result) == {"0", "1", "inf"}
    assert result["inf"]["ndcg@10"] == 1.0  # the teacher ranks both answers first on this easy set
    for metrics in result.values():
        assert set(metrics) == {"ndcg@10", "recall@10", "mrr@10"} and all(0.0 <= v <= 1.0 for v in metrics.values())
    report = {"backbone": "smol", "teacher": "mpnet", "sets": {"tiny": {"queries": 2, "passages": 3, "best_weight": "1", "weights": result}}}
    assert "| inf (teacher alone) | 1.0000 |" in markdown(report)


@pytest.mark.parametrize("weights", ["-1", "a,b", ",", "inf"])
def test_eval_fusion_rejects_bad_weights_before_loading_a_model(weights):
    result = CliRunner().invoke(cli, ["eval", "fusion", "--weights", weights])
    assert result.exit_code == 2 and "--weights" in result.output


def test_eval_fusion_takes_only_its_own_options():
    result = CliRunner().invoke(cli, ["eval", "fusion", "--limit", "5"])
    assert result.exit_code == 2 and "does not take --limit" in result.output
