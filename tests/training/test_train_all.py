"""`gensearch train all` end to end on the real SmolLM2 backbone and teacher, including a kill -9 mid-run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

QUESTIONS = [
    "How do I reverse a list?", "What is a tuple?", "How do I open a file?", "What is recursion?",
    "How do I sort a dict by value?", "What does yield do?", "How do I read JSON?", "What is a lambda?",
    "How do I join strings?", "What is a set?", "How do I copy a list?", "What is a decorator?",
    "How do I split a string?", "What is pip?", "How do I make a class?", "What is an exception?",
    "How do I loop with an index?", "What is None?", "How do I format a float?", "What is a module?",
]


def _queries(path: Path) -> Path:
    rows = [{"id": f"q{i:02d}", "query": q, "source": "test/inline", "split": "heldout" if i % 10 == 0 else "train"} for i, q in enumerate(QUESTIONS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "GENSEARCH_RUN_DIR": str(tmp_path / "run"), "GENSEARCH_BACKBONE": "test", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "app.cli", "train", "all", "--queries", str(tmp_path / "queries.jsonl"),
           "--max-new-tokens", "12", "--generate-batch-size", "2", "--batch-size", "4", "--threads", "1", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_train_all_runs_end_to_end_and_resumes_after_kill_9(tmp_path):
    _queries(tmp_path / "queries.jsonl")
    responses = tmp_path / "run" / "responses.jsonl"

    first = _run(tmp_path)
    deadline = time.monotonic() + 300
    while not (responses.is_file() and responses.read_text().count("\n") >= 2):
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "no responses written in 5 minutes"
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert 2 <= responses.read_text().count("\n") < len(QUESTIONS)

    second = _run(tmp_path)
    output = second.communicate(timeout=900)[0]
    assert second.returncode == 0, output

    ids = [json.loads(line)["id"] for line in responses.read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == len(QUESTIONS), "every query answered exactly once"
    fit_dir = tmp_path / "run" / "fit" / "smollm2-135m-instruct"
    report = json.loads((fit_dir / "report.json").read_text())
    assert report["complete"] and report["train_examples"] == 18 and report["held_out_examples"] == 2
    assert report["data"]["train"]["test"]["examples"] == 18 and report["data"]["held_out"]["test"]["examples"] == 2
    assert (fit_dir / "adapter" / "adapter.safetensors").is_file() and (fit_dir / "loss.png").is_file()

    # a warm start from that adapter picks up where it ended, with its calibrated learning rates
    env = {**os.environ, "GENSEARCH_RUN_DIR": str(tmp_path / "run"), "GENSEARCH_BACKBONE": "test", "OMP_NUM_THREADS": "1"}
    warm_dir = tmp_path / "warm"
    cmd = [sys.executable, "-m", "app.cli", "train", "fit", "--init-adapter", str(fit_dir / "adapter"), "--out", str(warm_dir),
           "--epochs", "1", "--batch-size", "4", "--threads", "1"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    warm = json.loads((warm_dir / "report.json").read_text())
    assert warm["held_out_before"] == pytest.approx(report["held_out_after"], rel=1e-4)
    assert warm["config"]["extra"]["init_adapter"] == str(fit_dir / "adapter") and "calibration" not in warm
    assert warm["config"]["lr_scales"] == pytest.approx({"recon": report["calibration"]["recon_scale"], "align": report["calibration"]["align_scale"]})
