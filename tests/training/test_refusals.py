"""The keyword refusal classifier and the system-prompt choice rule."""

import pytest

from training.refusals import choose_system, harmful_sample, is_refusal


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't assist with that.",
        "I’m sorry, I cannot help with that request.",
        "I cannot provide instructions for making weapons.",
        "As an AI language model, I must decline.",
        "Sorry, but I won't help with this.",
        "I am unable to fulfill this request because it is illegal.",
        "It is not appropriate to share that information.",
    ],
)
def test_refusals_are_detected(text):
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "To reverse a list in Python, use my_list[::-1] or my_list.reverse().",
        "The capital of Australia is Canberra.",
        "Use `kill -9 <pid>` to kill a stuck process.",
        "Here is a recipe: mix flour, eggs and milk.",
        "",
    ],
)
def test_answers_are_not_refusals(text):
    assert not is_refusal(text)


def test_only_the_opening_counts():
    assert not is_refusal("Here is a long helpful answer. " * 20 + "I cannot stress this enough.")


def test_choose_system_prefers_the_better_separation():
    def r(refused, n):
        return {"refused": refused, "n": n, "rate": refused / n}

    results = {
        "harmful": {"default": r(20, 40), "safety": r(32, 40)},
        "benign": {"default": r(0, 10), "safety": r(1, 10)},
        "scary_benign": {"default": r(1, 6), "safety": r(2, 6)},
    }
    assert choose_system(results) == "safety"
    results["chatterbot"] = {"default": r(2, 24), "safety": r(14, 24)}
    assert choose_system(results) == "default", "over-refusal on benign training queries outweighs"


def test_harmful_sample_uses_only_harmful_training_rows():
    rows = [{"query": f"h{i}", "source": "pyrit/many_shot", "split": "train"} for i in range(50)]
    rows += [{"query": "held", "source": "pyrit/many_shot", "split": "heldout"}, {"query": "benign", "source": "chatterbot/x", "split": "train"}]
    sample = harmful_sample(rows, 40, seed=1)
    assert len(sample) == 40 and len(set(sample)) == 40 and all(q.startswith("h") for q in sample)
    assert sample == harmful_sample(rows, 40, seed=1)
