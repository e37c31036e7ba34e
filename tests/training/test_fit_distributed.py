"""Two training processes (``accelerate launch``, gloo on CPU) give the adapter one process gives on the same global batches."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fit_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(path: Path) -> Path:
    """16 training and 4 held-out examples with random teacher targets and responses of different lengths."""
    rng = np.random.default_rng(0)
    topics = ["lists", "files", "sockets", "threads"]

    def example(i: int) -> dict:
        response = f"An answer about {topics[i % 4]}" + " and more" * (i % 5) + ".<|im_end|>"
        return {"query": f"question {i} about {topics[i % 4]}?", "response": response, "target": (rng.normal(size=16) * 0.1 + i % 4).tolist()}

    # batches of 4; L_recon on the first 3 of each, so the two processes hold 2 and 1 recon rows of unequal lengths
    config = {"epochs": 1.0, "batch_size": 4, "recon_batch_size": 3, "lr": 3e-3, "warmup_steps": 1, "checkpoint_every": 100, "seed": 0, "align_weight": 16.0}
    path.write_text(json.dumps({"train": [example(i) for i in range(16)], "held_out": [example(100 + i) for i in range(4)], "config": config}))
    return path


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def test_two_processes_train_the_adapter_one_process_trains(tiny_backbone, tmp_path):
    backbone_dir = tmp_path / "backbone"
    tiny_backbone.model.save_pretrained(backbone_dir)
    tiny_backbone.tokenizer.save_pretrained(backbone_dir)
    data = _data(tmp_path / "data.json")

    _run([sys.executable, str(WORKER), str(backbone_dir), str(data), str(tmp_path / "one")])
    # `--cpu` with several processes would take accelerate's single-process launcher; --multi_gpu starts
    # torchrun, and Trainer's Accelerator(cpu=True) then joins a gloo process group (DistributedType.MULTI_CPU).
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    _run([*launch, str(WORKER), str(backbone_dir), str(data), str(tmp_path / "two"), "2"])  # stopped at step 2, resumed

    batches = [json.loads((tmp_path / "one/seen.0.json").read_text()), *(json.loads((tmp_path / f"two/seen.{i}.json").read_text()) for i in (0, 1))]
    assert len(batches[0]) == 4 and all(len(b) == 4 for b in batches[0]), "one process: 4 steps of the whole batch of 4"
    assert [sorted(a + b) for a, b in zip(batches[1], batches[2])] == [sorted(b) for b in batches[0]], "two processes: each step's batch split between them"
    assert all(len(a) == len(b) == 2 for a, b in zip(batches[1], batches[2]))

    one, two = load_file(tmp_path / "one/adapter/adapter.safetensors"), load_file(tmp_path / "two/adapter/adapter.safetensors")
    assert one.keys() == two.keys() == {"special", "recon.weight", "recon.bias", "align.weight", "align.bias"}
    start = load_file(tmp_path / "one/calibrated.0.safetensors")
    for calibrated in ("two/calibrated.0.safetensors", "two/calibrated.1.safetensors"):
        assert all(np.array_equal(start[k], v) for k, v in load_file(tmp_path / calibrated).items()), "every process calibrates the same"
    moved = {name: float(np.abs(one[name] - start[name]).max()) for name in one}
    differences = {name: float(np.abs(one[name] - two[name]).max()) for name in one}
    print("\nmax |adapter(1 process) - adapter(2 processes)|:", differences, "\nmax |trained - calibrated|:", moved)
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)
        assert differences[name] <= 1e-4 * moved[name], f"{name}: the processes differ by {differences[name]:.2e} of a training move of {moved[name]:.2e}"

    rows_one, rows_two = (list(csv.DictReader(open(tmp_path / run / "loss.csv"))) for run in ("one", "two"))
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two] == ["1", "2", "3", "4"]
    for a, b in zip(rows_one, rows_two):  # the logged losses are the global batch's, whatever the number of processes
        for key in ("loss", "align", "recon", "cosine", "lr"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-4, abs=1e-5), (a["step"], key)
    reports = [json.loads((tmp_path / run / "report.json").read_text()) for run in ("one", "two")]
    assert reports[1]["held_out_after"] == pytest.approx(reports[0]["held_out_after"], rel=1e-4, abs=1e-5)
    assert reports[1]["calibration"] == pytest.approx(reports[0]["calibration"], rel=1e-6)
