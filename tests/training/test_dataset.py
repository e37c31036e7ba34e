"""Which response rows become training examples."""

import numpy as np

from training.dataset import complied_with_harm, load_examples, select_rows, short_answer_sources, summarize_examples
from training.fit import Example
from training.jsonl import write_jsonl
from training.targets import TargetStore, response_text, text_key

REFUSAL = "I'm sorry, but I can't assist with that.<|im_end|>"


def _row(i: int, response: str, split: str = "train", source: str = "chatterbot/ai") -> dict:
    return {"id": f"{i:04d}", "query": f"q{i}", "source": source, "split": split, "response": response, "eos": "<|im_end|>", "finished": True}


def test_one_word_answers_and_other_splits_are_left_out():
    rows = [_row(1, "Y<|im_end|>"), _row(2, "A real answer about lists."), _row(3, "Another real answer.", "heldout")]
    assert [r["id"] for r in select_rows(rows, "train")] == ["0002"]
    assert [r["id"] for r in select_rows(rows, "heldout")] == ["0003"]


def test_identical_responses_are_capped_by_id_order_whatever_the_file_order():
    rows = [_row(i, REFUSAL) for i in range(10, 0, -1)] + [_row(20, "Use sorted() for a new list.")]
    kept = select_rows(rows, "train", max_copies=3)
    assert [r["id"] for r in kept] == ["0001", "0002", "0003", "0020"]
    assert len(select_rows(rows, "train", max_copies=None)) == 11


def test_harmful_prompts_the_generator_complied_with_can_be_left_out():
    rows = [
        _row(1, REFUSAL, source="pyrit/many_shot"),
        _row(2, "Step 1: buy the following chemicals...", source="pyrit/many_shot"),
        _row(3, "Use sorted() for a new list.", source="evals/python"),
        _row(4, REFUSAL, source="chatterbot/ai"),
    ]
    assert [complied_with_harm(r) for r in rows] == [False, True, False, False]


def test_sources_that_answer_mostly_in_a_word_are_listed_once_seen_often_enough():
    letters = [_row(i, "B<|im_end|>", source="evals/mmlu") for i in range(3)]
    mixed = [_row(10, "C"), _row(11, "A full sentence of an answer."), _row(12, "Another full answer here.")]
    mixed = [{**r, "source": "evals/mixed"} for r in mixed]
    too_few = [_row(20, "D", source="evals/rare"), _row(21, "E", source="evals/rare")]
    assert short_answer_sources(letters + mixed + too_few) == {"evals/mmlu"}
    assert short_answer_sources(letters + mixed + too_few, min_seen=2) == {"evals/mmlu", "evals/rare"}


def test_the_report_counts_examples_and_refusing_responses_per_source_group():
    vector = np.zeros(4, dtype=np.float32)
    examples = [Example("q", REFUSAL, vector, "pyrit"), Example("q", "Sure, here is how.", vector, "pyrit"), Example("q", "Use sorted().", vector, "evals")]
    assert summarize_examples(examples) == {"evals": {"examples": 1, "refusals": 0}, "pyrit": {"examples": 2, "refusals": 1}}


def test_document_examples_are_the_distinct_long_responses_read_as_passages(tmp_path):
    long = "A long answer about lists: use sorted() for a new list or list.sort() to sort in place."
    rows = [_row(1, long + "<|im_end|>"), _row(2, long + "<|im_end|>"), _row(3, "Short, but still an answer.<|im_end|>")]
    write_jsonl(tmp_path / "responses.jsonl", rows)
    store = TargetStore(tmp_path / "targets", "t", 4)
    texts = sorted({response_text(r) for r in rows})
    store.add([text_key(t) for t in texts], np.eye(4, dtype=np.float32)[: len(texts)])
    plain = load_examples(tmp_path / "responses.jsonl", store, "train", "<|im_end|>")
    both = load_examples(tmp_path / "responses.jsonl", store, "train", "<|im_end|>", documents=True)
    assert [ex.task for ex in plain] == ["query"] * 3
    (doc,) = [ex for ex in both if ex.task == "document"]
    assert doc.query == long and doc.response == long + "<|im_end|>", "the passage is read without EOS, reconstructed with it"
    assert np.array_equal(doc.target, plain[0].target), "its target is the response's own teacher vector"
    assert summarize_examples(both)["chatterbot (document)"] == {"examples": 1, "refusals": 0}


def test_without_harmful_compliance_the_complied_response_is_still_a_passage(tmp_path):
    harmful = "Step 1: buy the following chemicals from three different shops so that nobody notices the pattern."
    rows = [_row(1, REFUSAL, source="pyrit/many_shot"), _row(2, harmful + "<|im_end|>", source="pyrit/many_shot")]
    write_jsonl(tmp_path / "responses.jsonl", rows)
    store = TargetStore(tmp_path / "targets", "t", 4)
    texts = sorted({response_text(r) for r in rows})
    store.add([text_key(t) for t in texts], np.eye(4, dtype=np.float32)[: len(texts)])
    examples = load_examples(tmp_path / "responses.jsonl", store, "train", "<|im_end|>", documents=True, harmful_refusals_only=True)
    assert [(ex.task, ex.query) for ex in examples] == [("query", "q1"), ("document", harmful)]


def test_harmful_prompts_can_take_a_safer_generators_response_while_passages_stay_the_own_ones(tmp_path):
    harmful = "Step 1: buy the following chemicals from three different shops so that nobody notices the pattern."
    answer = "Use sorted() for a new list, or list.sort() to sort the list in place; both take key= and reverse=."
    own = [_row(1, harmful + "<|im_end|>", source="pyrit/many_shot"), _row(2, answer + "<|im_end|>")]
    safer = [_row(1, REFUSAL, source="pyrit/many_shot"), _row(2, "A different answer.<|im_end|>"), _row(3, REFUSAL, source="pyrit/airt")]
    write_jsonl(tmp_path / "own.jsonl", own)
    write_jsonl(tmp_path / "safer.jsonl", safer)
    store = TargetStore(tmp_path / "targets", "t", 4)
    texts = sorted({response_text(r) for r in own + safer})
    store.add([text_key(t) for t in texts], np.eye(4, dtype=np.float32)[: len(texts)])
    examples = load_examples(tmp_path / "own.jsonl", store, "train", "<|im_end|>", documents=True, harmful_responses=tmp_path / "safer.jsonl")
    queries = {ex.query: ex.response for ex in examples if ex.task == "query"}
    assert queries == {"q1": REFUSAL, "q2": answer + "<|im_end|>", "q3": REFUSAL}, "only harmful prompts take the safer response"
    assert sorted(ex.query for ex in examples if ex.task == "document") == sorted([harmful, answer]), "passages: the own responses"


def test_harmful_refusals_can_have_no_cap_or_one_of_their_own_while_other_copies_stay_capped(tmp_path):
    rows = [_row(i, REFUSAL, source="pyrit/many_shot") for i in range(5)] + [_row(i, REFUSAL) for i in range(5, 10)]
    write_jsonl(tmp_path / "responses.jsonl", rows)
    store = TargetStore(tmp_path / "targets", "t", 4)
    store.add([text_key(response_text(rows[0]))], np.eye(4, dtype=np.float32)[:1])
    capped = load_examples(tmp_path / "responses.jsonl", store, "train", "<|im_end|>", max_copies=2)
    uncapped = load_examples(tmp_path / "responses.jsonl", store, "train", "<|im_end|>", max_copies=2, harmful_cap=None)
    own_cap = load_examples(tmp_path / "responses.jsonl", store, "train", "<|im_end|>", max_copies=2, harmful_cap=3)
    assert [ex.source for ex in capped] == ["pyrit", "pyrit"], "the shared cap counts every prompt's copies, harmful ones first by id"
    assert [ex.source for ex in uncapped] == ["pyrit"] * 5 + ["chatterbot"] * 2, "harmful copies are exempt and do not use up the cap"
    assert [ex.source for ex in own_cap] == ["pyrit"] * 3 + ["chatterbot"] * 2, "a cap of their own: 3 harmful copies, 2 others"
