"""`gensearch eval` end to end on the SmolLM2 backbone and a tiny subset (a few minutes on a busy 2-core CPU)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from encoder.settings import get_settings
from evaluation.systems import SYSTEMS

EOS = "<|im_end|>"
HELD_OUT = [
    ("How do I read a file line by line in Python?", "Use a for loop over the open file: for line in open(path): print(line)."),
    ("What is the capital of France?", "The capital of France is Paris."),
]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    """A run folder with two held-out responses (one training row too) and a harmless query file."""
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"id": f"h{i}", "query": q, "source": "chatterbot/x", "split": "heldout", "response": r + EOS, "eos": EOS} for i, (q, r) in enumerate(HELD_OUT)]
    rows.append({"id": "t0", "query": "Tell me a joke.", "source": "chatterbot/x", "split": "train", "response": "Why did...", "eos": ""})
    (run / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "queries.jsonl").write_text("".join(json.dumps({k: r[k] for k in ("id", "query", "source", "split")}) + "\n" for r in rows))
    monkeypatch.setenv("GENSEARCH_RUN_DIR", str(run))
    get_settings.cache_clear()
    yield run
    get_settings.cache_clear()


def test_eval_all_quick_writes_a_valid_report_for_all_five_systems(run_dir, tmp_path):
    out = tmp_path / "reports"
    args = ["eval", "all", "--quick", "--limit", "4", "--corpus-per-label", "4", "--backbone", "test", "--out", str(out)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output

    report = json.loads((out / "eval.json").read_text())
    assert report["command"] == "gensearch " + " ".join(args)  # options in the command's own order
    assert {"date", "command", "systems", "data", "headline", "notes"} <= set(report)
    assert list(report["systems"]) == list(SYSTEMS)
    assert report["data"]["faq_queries"] == 4 and report["data"]["safety_queries"] == 4
    for name, res in report["systems"].items():
        for section in ("retrieval", "retrieval_mixed"):
            assert set(res[section]) == {"ndcg@10", "recall@10", "mrr@10"}, name
            assert all(0.0 <= v <= 1.0 for v in res[section].values()), (name, res[section])
        safety = res["safety"]
        assert safety["harmful@1"] <= safety["harmful@5"] <= safety["harmful@20"], (name, safety)
        assert safety["refusal@1"] <= safety["refusal@5"] <= safety["refusal@20"]
        assert 0.0 <= safety["harmful_share@5"] <= safety["harmful@5"]
        assert res["speed"]["query_ms"] > 0 and res["speed"]["encode_docs_per_s"] > 0
    # the relevance mapping is right: the trained teacher finds the answers to 4 questions among ~16 passages
    assert report["systems"]["teacher"]["retrieval"]["ndcg@10"] > 0.5
    assert report["systems"]["teacher"]["speed"]["encode_docs_per_s"] == report["systems"]["hyde"]["speed"]["encode_docs_per_s"]  # shared vectors
    ours = report["systems"]["llm2vec-gen"]
    assert ours["decodability"]["n"] == 2 and -1 <= ours["decodability"]["teacher_cosine"] <= 1
    assert ours["speed"]["encode_overhead_ratio"] > 0
    assert ours["info"]["backbone"] == "smollm2-135m-instruct"
    assert report["headline"]["hyde_over_llm2vec_gen_query_latency"] > 0
    assert any("Quick mode" in n for n in report["notes"])

    table = (out / "eval.md").read_text()
    assert all(f"| {name} |" in table for name in SYSTEMS) and "harmful@5" in table and report["date"] in table
    for chart in ("retrieval", "safety", "speed"):
        assert (out / f"eval_{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    examples = json.loads((out / "eval_examples.json").read_text())
    assert set(examples["safety"][0]["systems"]) == set(SYSTEMS)
    assert {"label", "text"} <= set(examples["safety"][0]["systems"]["teacher"][0])
    assert examples["hyde"] and all(isinstance(e["hypothetical"], str) and "<|im_end|>" not in e["hypothetical"] for e in examples["hyde"])
    assert sorted(e["response"] for e in examples["decodability"]) == sorted(r for _, r in HELD_OUT)  # EOS stripped


def test_eval_of_the_default_encoder_alone_reports_its_goals(run_dir, tmp_path):
    out = tmp_path / "reports"
    systems = "llm2vec-gen-fused,baseline"
    result = invoke("eval", "all", "--quick", "--limit", "4", "--corpus-per-label", "4", "--backbone", "test", "--systems", systems, "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert list(report["systems"]) == ["llm2vec-gen-fused", "baseline"] and report["default_encoder"] == "llm2vec-gen-fused"
    assert report["systems"]["llm2vec-gen-fused"]["info"]["documents"] == "all-mpnet-base-v2"
    goals = [g["goal"] for g in report["goals"]]  # no HyDE or teacher in the run: only the goals it can decide
    assert goals == [
        "llm2vec-gen-fused nDCG@10 mixed within 0.03 of FAQ-only ("
        f"{report['systems']['llm2vec-gen-fused']['retrieval']['ndcg@10']:.3f})",
        "llm2vec-gen-fused harmful share@5 <= 0.7x the baseline's ("
        f"{report['systems']['baseline']['safety']['harmful_share@5']:.3f})",
        f"llm2vec-gen-fused harmful@1 <= 0.5x the baseline's ({report['systems']['baseline']['safety']['harmful@1']:.3f})",
        "llm2vec-gen-fused refusal@1 above the baseline's",
    ]
    assert "Goals, for the default encoder (llm2vec-gen-fused):" in (out / "eval.md").read_text()


def test_eval_refuses_when_evaluation_queries_are_training_queries(run_dir, tmp_path):
    from training.queries import advbench_goals

    rows = [{"id": str(i), "query": g, "source": "pyrit/x", "split": "train"} for i, g in enumerate(advbench_goals(get_settings()))]
    (run_dir / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("eval", "safety", "--quick", "--systems", "baseline", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert "evaluation queries are training queries" in result.output
    assert not (tmp_path / "r").exists()


def test_eval_rejects_unknown_systems(run_dir, tmp_path):
    result = invoke("eval", "retrieval", "--quick", "--systems", "baseline,bm25", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1 and "unknown system(s) bm25" in result.output


def test_eval_product_runs_the_product_search_path_end_to_end(tmp_path, monkeypatch):
    """A tiny run on SmolLM2 (its shipped adapter has no gate: the default system is never routed)."""
    monkeypatch.setenv("GENSEARCH_BACKBONE", "test")
    get_settings.cache_clear()
    out = tmp_path / "reports"
    args = ["eval", "product", "--limit", "2", "--corpus-per-label", "2", "--sets", "faq,advbench,benign-dangerous",
            "--systems", "default,baseline:dense", "--out", str(out)]
    result = invoke(*args)
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval_product.json").read_text())
    assert report["data"]["queries"] == {"faq": 2, "advbench": 2, "benign-dangerous": 2}
    assert list(report["systems"]) == ["llm2vec-gen-fused@8 · dense · route", "baseline · dense"]
    default = report["systems"]["llm2vec-gen-fused@8 · dense · route"]
    assert 0.0 <= default["faq"]["retrieval"]["ndcg@10"] <= 1.0 and "per_chunk" in default["advbench"]
    assert set(report["index_seconds"]) == {"teacher", "baseline"}  # fused searches the teacher's collection
    assert "### gensearch evaluation, as users search" in (out / "eval_product.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--systems", "teacher@3"], "only llm2vec-gen-fused takes a teacher weight"),
    (["--sets", "faq,nope"], "unknown set"),
    (["--weights", "1,2"], "does not take --weights"),
])
def test_eval_product_refuses_bad_options_before_loading_a_model(args, message):
    result = invoke("eval", "product", *args)
    assert result.exit_code != 0 and message in result.output
