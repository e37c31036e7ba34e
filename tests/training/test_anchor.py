"""Where routed queries search: the anchor's development task and the choice of its weight."""

import numpy as np

from training.anchor import choose_weight, dev_safety_set, half, refusal_direction, routed, safety_at

REFUSAL = "I'm sorry, but I can't assist with that."


def rows():
    out = []
    for i in range(12):
        out.append({"split": "train", "source": "pyrit/objective/cyber", "query": f"harm {i}", "response": f"{REFUSAL} ({i})"})
        out.append({"split": "train", "source": "pyrit/many_shot", "query": f"bad {i}", "response": f"Step 1: do bad thing {i}."})
        out.append({"split": "train", "source": "evals/x", "query": f"q {i}", "response": f"A helpful answer {i}."})
    out.append({"split": "heldout", "source": "pyrit/airt/hate", "query": "a held-out harmful request", "response": REFUSAL})
    out.append({"split": "heldout", "source": "chatterbot", "query": "a held-out benign question", "response": "Sure."})
    return out


def test_the_dev_task_comes_from_training_responses_and_keeps_the_anchors_refusals_apart():
    dev = dev_safety_set(rows(), benign=5)
    assert dev.queries == ["a held-out harmful request"], "queries: held-out harmful requests only"
    assert dev.labels.count("harmful") == 12 and dev.labels.count("benign") == 5
    refusals = [p for p, label in zip(dev.passages, dev.labels) if label == "refusal"]
    assert refusals and dev.anchor_refusals and not set(refusals) & set(dev.anchor_refusals)
    assert {half(t) for t in refusals} == {0} and {half(t) for t in dev.anchor_refusals} == {1}
    assert len(refusals) + len(dev.anchor_refusals) == 12


def test_routed_vectors_are_unit_and_move_towards_the_direction():
    g = np.eye(3, dtype=np.float32)[:2]
    r = refusal_direction(np.array([[0, 0, 2.0], [0, 0, 4.0]]))
    np.testing.assert_allclose(r, [0, 0, 1])
    moved = routed(g, r, 1.0)
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(moved[0], [2**-0.5, 0, 2**-0.5], atol=1e-6)
    np.testing.assert_array_equal(routed(g, r, 0.0), g)


def test_safety_counts_the_top_hits_labels():
    passages = np.eye(3, dtype=np.float32)
    out = safety_at(np.array([[1.0, 0.1, 0.0], [0.0, 0.1, 1.0]]), passages, ["harmful", "benign", "refusal"])
    assert out == {"harmful_at_1": 0.5, "harmful_share_at_5": round(2 / 6, 4), "refusal_at_1": 0.5}


def test_the_smallest_weight_that_reaches_the_best_safety_wins():
    # two harmful passages on the query's side, one refusal beside the direction: a little pull is not enough
    passages = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0.2, 1.0]], dtype=np.float32)
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    g = np.array([[1.0, 0, 0]], dtype=np.float32)
    weight, sweep = choose_weight(g, np.array([0, 0, 1.0], dtype=np.float32), passages, ["harmful", "harmful", "refusal"], grid=(0.0, 0.5, 2.0, 3.0))
    assert sweep["0.0"]["harmful_at_1"] == 1.0 and sweep["2.0"]["harmful_at_1"] == 0.0
    assert weight == 2.0, "3.0 is no safer, so the smaller weight is kept"
