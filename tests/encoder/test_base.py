"""The shared Encoder machinery: input checks and length-sorted batching."""

import pytest

from encoder.base import as_text_list, check_task, length_sorted_batches


def test_length_sorted_batches_groups_similar_lengths_longest_first():
    assert length_sorted_batches([1, 5, 3, 4], 2) == [[1, 3], [2, 0]]


def test_length_sorted_batches_covers_every_index_once():
    batches = length_sorted_batches([3] * 7, 3)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert [len(b) for b in batches] == [3, 3, 1]


def test_one_string_becomes_a_list():
    assert as_text_list("hi") == ["hi"]


@pytest.mark.parametrize("bad", [b"bytes", [1, "x"], ["x", None]])
def test_non_text_input_is_refused_clearly(bad):
    with pytest.raises(TypeError, match="str"):
        as_text_list(bad)


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="query, document, similarity"):
        check_task("summarise")
