"""How the closed-form align refit (``training/head.py``) scales with training examples, in one run.

    .venv/bin/python benchmarks/align_refit_curve.py --adapter encoder/adapters/qwen2.5-coder-0.5b-instruct

Reads the cached soft-prompt means that `gensearch train refit-align` computed for the adapter (it
computes missing ones: one forward pass per example), then for growing seeded subsets of the training
examples fits the ridge head (lambda by 5-fold CV on the subset) and prints the held-out query cosine.
A curve still rising at the full set says more training responses would still help.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
from pathlib import Path

import numpy as np
import torch

from encoder.backbone import load_backbone
from encoder.llm2vec_gen import LLM2VecGenEncoder
from encoder.registry import get_spec
from encoder.settings import get_settings
from training.dataset import load_examples
from training.generate import shipped_responses
from training.head import LAMBDAS, cross_validate, feature_store, mean_cosine, ridge, soft_prompt_means
from training.targets import TargetStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--sizes", default="400,800,1600,all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = get_settings()
    teacher = get_spec(settings.teacher)
    store = TargetStore(settings.run_dir / "targets" / teacher.name, teacher.name, teacher.dim)
    backbone = load_backbone(None, torch.device("cpu"), torch.float32)
    encoder = LLM2VecGenEncoder.load(args.adapter, backbone)
    responses = settings.run_dir / "responses.jsonl"
    responses = responses if responses.is_file() else shipped_responses(backbone.name)
    eos = backbone.tokenizer.eos_token
    train = load_examples(responses, store, "train", eos, documents=True)
    held = load_examples(responses, store, "heldout", eos)
    features = feature_store(settings.run_dir / "features", encoder)
    x, xh = soft_prompt_means(encoder, train, features), soft_prompt_means(encoder, held, features)
    y, yh = np.stack([e.target for e in train]), np.stack([e.target for e in held])
    order = list(range(len(train)))
    random.Random(0).shuffle(order)
    rows = []
    for size in args.sizes.split(","):
        n = len(train) if size == "all" else min(int(size), len(train))
        idx = order[:n]
        scores = cross_validate(x[idx], y[idx], LAMBDAS)
        lam = max(scores, key=scores.get)
        w, b = ridge(x[idx], y[idx], lam)
        rows.append({"examples": n, "lambda": lam, "cv_cosine": round(scores[lam], 4), "held_out_cosine": round(mean_cosine(xh, w, b, yh), 4)})
        print(json.dumps(rows[-1]), flush=True)
    w0, b0 = encoder.model.align.weight.detach().numpy(), encoder.model.align.bias.detach().numpy()
    result = {"adapter": str(args.adapter), "cpu": platform.processor() or platform.machine(), "held_out_cosine_sgd_head": round(mean_cosine(xh, w0, b0, yh), 4), "curve": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
