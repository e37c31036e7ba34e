"""The questions `gensearch adapt` trains on: what is kept of the backbone's answer for a chunk."""

from training.questions import dedup, parse_questions, question_prompt, quotes

CHUNK = ("To reverse a list in place, call its reverse() method; reversed(seq) returns an iterator over the items "
         "in reverse order without changing the list itself.")


def test_the_prompt_shows_the_chunk_and_asks_for_n_questions():
    prompt = question_prompt(CHUNK, n=4)
    assert CHUNK in prompt and "Write 4 different short questions" in prompt


def test_numbered_questions_are_kept_without_their_numbers():
    answer = "1. How do I reverse a list?\n2) What does reversed() return?\n- Does reverse() copy the list?"
    assert parse_questions(answer, CHUNK) == ["How do I reverse a list?", "What does reversed() return?", "Does reverse() copy the list?"]


def test_lines_that_are_not_short_questions_are_dropped():
    answer = "Sure! Here are some questions:\nHow?\nHow do I reverse a list?\n" + "Why " * 40 + "?"
    assert parse_questions(answer, CHUNK) == ["How do I reverse a list?"]


def test_a_question_that_copies_the_chunk_is_dropped():
    copied = "Does reversed(seq) return an iterator over the items in reverse order?"
    assert quotes(copied, CHUNK)
    assert parse_questions(f"{copied}\nHow can I flip a list?", CHUNK) == ["How can I flip a list?"]


def test_a_refusal_gives_no_questions():
    assert parse_questions("I'm sorry, but I can't assist with that.", CHUNK) == []


def test_at_most_n_distinct_questions_per_chunk():
    answer = "How do I reverse a list?\nhow do I  reverse a list?\nWhat is reversed()?\nIs reverse() in place?\nA fourth one?"
    assert parse_questions(answer, CHUNK, n=3) == ["How do I reverse a list?", "What is reversed()?", "Is reverse() in place?"]


def test_a_question_two_chunks_share_is_dropped_from_both():
    rows = [{"question": "What is it?", "chunk": "a"}, {"question": "what is it?", "chunk": "b"}, {"question": "How?", "chunk": "a"}]
    assert dedup(rows) == [{"question": "How?", "chunk": "a"}]


def test_a_question_about_the_passage_itself_is_dropped():
    answer = "What is the difference between reverse() and the exception in the given passage?\nHow do I flip a list?"
    assert parse_questions(answer, CHUNK) == ["How do I flip a list?"]
