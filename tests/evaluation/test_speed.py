"""Latency is measured side by side: the systems take turns, query by query, the first one rotating;
a run works on the systems that generate last (their engine slows torch down for the rest of the process)."""

import numpy as np
import pytest

from evaluation.speed import phases, query_latencies, rotated
from evaluation.systems import System


class Recorder(System):
    """A system that only records which queries it was asked to embed, into a shared log."""

    def __init__(self, name: str, calls: list[tuple[str, list[str]]], generates: bool = False):
        self.name, self.doc_key, self.calls, self.generates = name, name, calls, generates

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self.calls.append((self.name, texts))
        return np.zeros((len(texts), 2), dtype=np.float32)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("latency embeds queries only")


def test_rotated_starts_at_the_shift_and_wraps():
    assert rotated(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert rotated([], 3) == []


def test_systems_warm_up_then_take_turns_one_query_at_a_time():
    calls: list[tuple[str, list[str]]] = []
    systems = [Recorder("ours", calls), Recorder("hyde", calls)]
    result = query_latencies(systems, ["q1", "q2", "q3"], progress=False)
    assert calls == [
        ("ours", ["q1"]), ("hyde", ["q1"]),  # untimed warm-up
        ("ours", ["q1"]), ("hyde", ["q1"]),
        ("hyde", ["q2"]), ("ours", ["q2"]),
        ("ours", ["q3"]), ("hyde", ["q3"]),
    ]
    assert set(result) == {"ours", "hyde"}
    assert all(r["latency_queries"] == 3 and 0 <= r["query_ms"] <= r["query_ms_max"] for r in result.values())


def test_a_run_works_on_the_systems_that_generate_last():
    systems = [Recorder("hyde", [], generates=True), Recorder("ours", []), Recorder("teacher", [])]
    assert [[s.name for s in phase] for phase in phases(systems)] == [["ours", "teacher"], ["hyde"]]
    assert [[s.name for s in phase] for phase in phases(systems[1:])] == [["ours", "teacher"]]  # no empty phase


def test_no_queries_is_an_error():
    with pytest.raises(ValueError, match="at least one query"):
        query_latencies([Recorder("ours", [])], [])
