"""Teacher targets: encoded once, cached by content hash, reused on re-runs."""

import numpy as np
import pytest

from encoder import load_encoder
from training.targets import TargetStore, build_targets, load_targets, open_store, response_text


@pytest.fixture(scope="module")
def teacher():
    return load_encoder("teacher", device="cpu", dtype="float32")


def _rows(texts, eos="<|im_end|>"):
    return [{"id": str(i), "response": t + eos, "eos": eos} for i, t in enumerate(texts)]


def test_response_text_strips_only_the_recorded_eos():
    assert response_text({"response": "hi<|im_end|>", "eos": "<|im_end|>"}) == "hi"
    assert response_text({"response": "cut off", "eos": ""}) == "cut off"


def test_targets_are_cached_and_reused(teacher, tmp_path):
    store = open_store(tmp_path, teacher)
    rows = _rows(["Paris is the capital of France.", "Use list.reverse().", "Paris is the capital of France."])
    first = build_targets(rows, store, teacher, progress=False)
    assert first == {**first, "responses": 3, "unique": 2, "encoded": 2, "cached": 0}
    vectors = load_targets(rows, store)
    assert vectors.shape == (3, teacher.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[0], vectors[2])
    np.testing.assert_allclose(vectors[0], teacher.encode(["Paris is the capital of France."])[0], atol=1e-5)

    # A new process (fresh store object) only encodes the new text.
    reopened = open_store(tmp_path, teacher)
    more = rows + _rows(["A brand new answer."])
    second = build_targets(more, reopened, teacher, progress=False)
    assert second["encoded"] == 1 and second["cached"] == 2
    np.testing.assert_allclose(load_targets(rows, reopened), vectors)


def test_missing_targets_raise(teacher, tmp_path):
    store = open_store(tmp_path, teacher)
    with pytest.raises(KeyError, match="train targets"):
        load_targets(_rows(["never encoded"]), store)


def test_store_refuses_another_teacher(tmp_path):
    TargetStore(tmp_path, "teacher-a", 4)
    with pytest.raises(ValueError, match="another folder"):
        TargetStore(tmp_path, "teacher-b", 4)
