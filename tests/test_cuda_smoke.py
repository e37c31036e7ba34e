"""benchmarks/cuda_smoke.py: every check passes on CPU here, and on CUDA when a GPU is present."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cuda_smoke.py"
CHECKS = {"encode, decode, logit lens", "training step", "generation (transformers engine)", "index + hybrid search"}


def run(device: str) -> list[dict]:
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", device], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_smoke_checks_pass_on_cpu():
    assert {r["check"] for r in run("cpu") if "check" in r} == CHECKS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_smoke_checks_pass_on_cuda():
    assert {r["check"] for r in run("cuda") if "check" in r} == CHECKS
