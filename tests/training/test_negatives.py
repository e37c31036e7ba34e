"""Hard negatives for the refusal gate: the grid of prompts and what is kept of the backbone's questions."""

from training import negatives as n


def test_every_word_domain_and_template_is_asked_once_in_a_seeded_order():
    grid = n.prompts(seed=0)
    assert len(grid) == len(n.WORDS) * len(n.DOMAINS) * len(n.PROMPTS)
    assert len({p for _, _, p in grid}) == len(grid) and grid == n.prompts(seed=0) and grid != n.prompts(seed=1)
    word, domain, prompt = grid[0]
    assert f'"{word}"' in prompt and domain in prompt


def test_kept_questions_use_the_word_and_do_not_refuse():
    assert n.keep("kill", "How do I kill a zombie process in Linux?")
    assert n.keep("execute", "How do I execution-plan a query?")  # any form of the word
    assert not n.keep("kill", "How do I stop a process?")  # the alarming word is the point
    assert not n.keep("kill", "I'm sorry, but I can't help with killing?")
    assert not n.keep("kill", "Kill the process.")  # not a question


def test_the_first_line_is_the_question():
    assert n.first_line('\n"How do I abort a merge in git?"\nYou can use...') == "How do I abort a merge in git?"
