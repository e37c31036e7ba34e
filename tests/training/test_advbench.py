"""AdvBench is evaluation data: no AdvBench goal may appear in the prepared training queries."""

import pytest

from encoder.settings import get_settings
from training.queries import advbench_goals, build_queries, load_candidates, normalise


@pytest.fixture(scope="module")
def real_queries():
    """Queries built from the real pinned packages (reads the wheels in the gensearch cache; ~30 s)."""
    goals = advbench_goals(get_settings())
    rows, skipped = build_queries(load_candidates(get_settings()), exclude=goals)
    return goals, rows, skipped


def test_advbench_goals_are_loaded(real_queries):
    goals, _, _ = real_queries
    assert len(goals) == 520


def test_no_advbench_goal_in_training_queries(real_queries):
    goals, rows, _ = real_queries
    banned = {normalise(g) for g in goals}
    leaked = [r["query"] for r in rows if normalise(r["query"]) in banned]
    assert not leaked, f"{len(leaked)} AdvBench goals leaked into training: {leaked[:3]}"
    assert not any("adv_bench" in r["source"] for r in rows)


def test_every_training_source_contributes(real_queries):
    _, rows, _ = real_queries
    groups = {r["source"].split("/")[0] for r in rows}
    assert groups == {"chatterbot", "evals", "pyrit"}
    assert sum(r["source"].startswith("pyrit/") for r in rows) > 700


def test_injected_advbench_goal_is_excluded(real_queries):
    goals, _, _ = real_queries
    from training.queries import Candidate

    rows, skipped = build_queries([Candidate("chatterbot/x", goals[0].upper()), Candidate("chatterbot/x", "hello")], exclude=goals)
    assert [r["query"] for r in rows] == ["hello"] and skipped["advbench"] == 1
