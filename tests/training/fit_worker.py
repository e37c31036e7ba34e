"""One tiny training run, for ``test_fit_distributed.py``; run it with one process or under ``accelerate launch``.

    python tests/training/fit_worker.py BACKBONE_DIR DATA_JSON OUT_DIR [STOP_AT_STEP]

BACKBONE_DIR is a Hugging Face model folder (model and tokenizer), DATA_JSON holds ``train`` and
``held_out`` examples (query, response, target) and the ``config`` (FitConfig fields). With STOP_AT_STEP
the run stops there with a checkpoint and a second Trainer, on a freshly built adapter, resumes it.
Each process writes the queries of every training forward it ran to OUT_DIR/seen.<process>.json and the
adapter right after calibration to OUT_DIR/calibrated.<process>.safetensors.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from encoder.backbone import Backbone
from encoder.llm2vec_gen import LLM2VecGenEncoder
from training.fit import Example, FitConfig, Trainer


def main() -> None:
    backbone_dir, data_path, out = (Path(a) for a in sys.argv[1:4])
    stop_at = int(sys.argv[4]) if len(sys.argv) > 4 else None
    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(backbone_dir, dtype=torch.float32).eval()
    model.requires_grad_(False)
    backbone = Backbone(name="tiny-llama", model=model, tokenizer=AutoTokenizer.from_pretrained(backbone_dir), sha256="0" * 64)
    data = json.loads(data_path.read_text())
    train, held_out = ([Example(r["query"], r["response"], np.array(r["target"], dtype=np.float32)) for r in data[k]] for k in ("train", "held_out"))
    config = FitConfig(**data["config"])

    process = int(os.environ.get("RANK", 0))
    seen: list[list[str]] = []  # the queries of each training forward this process ran

    def trainer() -> Trainer:
        torch.manual_seed(config.seed)
        t = Trainer(LLM2VecGenEncoder.fresh(backbone, num_tokens=4, teacher_dim=len(train[0].target), seed=0), train, held_out, config, out)
        forward, calibrate = t.forward, t.calibrate

        def recording_forward(batch, recon_examples=None):
            if torch.is_grad_enabled():
                seen.append([ex.query for ex in batch])
            return forward(batch, recon_examples)

        def calibrate_and_save(batch):  # the adapter training starts from, for the test's scale of "moved"
            scales = calibrate(batch)
            save_file({k: v.contiguous() for k, v in t.model.adapter_state_dict().items()}, out / f"calibrated.{process}.safetensors")
            return scales

        t.forward, t.calibrate = recording_forward, calibrate_and_save
        return t

    if stop_at is not None:
        assert trainer().run(stop_at_step=stop_at) == {"steps": stop_at, "complete": False}
    report = trainer().run(resume=True)
    assert report["complete"], report
    (out / f"seen.{process}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
