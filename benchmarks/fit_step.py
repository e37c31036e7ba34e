"""Where a training step's time goes, and what each schedule buys per CPU-hour, measured in one run.

Times the parts of ``Trainer.forward`` + backward on the real backbone with a fresh adapter:

    prefix     the frozen LM reads "instruction + query" once, no gradients      (B, T)
    special    the K special positions with gradients over the cached prefix    (B, K) fwd + bwd, L_align
    recon      the frozen LM reads soft prompts + response, LM head, CE        (R, K + 64) fwd + bwd

then whole steps for several (batch size B, L_recon examples R) schedules, reported as seconds per
step and alignment / reconstruction examples per CPU-hour, each against the current default (B=8, R=8).

    .venv/bin/python benchmarks/fit_step.py [--responses runs/default/responses.jsonl] [--rounds 2]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch

from encoder.backbone import load_backbone
from encoder.device import resolve_device, resolve_dtype
from encoder.llm2vec_gen import LLM2VecGenEncoder
from training.fit import Example, FitConfig, Trainer
from training.jsonl import read_jsonl
from training.targets import response_text

SCHEDULES = [(8, None), (32, 4), (32, 0), (16, 2)]  # (B, R); R None = every example


def load_batch_material(path: Path, n: int, eos: str, seed: int = 0) -> list[Example]:
    """Real queries and responses (random unit targets: the timing does not depend on their values)."""
    rows = [r for r in read_jsonl(path) if len(response_text(r)) >= 12]
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(len(rows), 768)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    return [Example(r["query"], response_text(r) + (eos if r["finished"] else ""), t) for r, t in zip(rows, targets)]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=Path, default=Path("runs/default/responses.jsonl"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--response-max-tokens", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    backbone = load_backbone(None, device, resolve_dtype("auto", device))
    examples = load_batch_material(args.responses, 32 * args.rounds * len(SCHEDULES), backbone.tokenizer.eos_token)
    encoder = LLM2VecGenEncoder.fresh(backbone)
    model = encoder.model
    pool = iter(examples * 4)

    def trainer(b: int, r: int | None) -> Trainer:
        config = FitConfig(batch_size=b, recon_batch_size=r, response_max_tokens=args.response_max_tokens, calibrate=False)
        return Trainer(encoder, examples[:b], [], config, Path("/tmp/gensearch-fit-step"))

    # ---- the parts, batch 8
    t = trainer(8, None)
    parts = {"prefix": [], "special": [], "recon": []}
    for _ in range(args.rounds):
        batch = [next(pool) for _ in range(8)]
        x = t._tensors(batch)
        positions = (x["mask"].cumsum(1) - 1).clamp(min=0)
        parts["prefix"].append(timed(lambda: model.lm.base_model(input_ids=x["ids"], attention_mask=x["mask"], position_ids=positions, use_cache=True)))
        both = timed(lambda: model.align_loss(model.project(model.special_states_cached_prefix(x["ids"], x["mask"]))[1], x["targets"]).backward())
        parts["special"].append(both - parts["prefix"][-1])
        p = model.project(model.special_states_cached_prefix(x["ids"], x["mask"]))[0].detach().requires_grad_(True)
        parts["recon"].append(timed(lambda: model.recon_loss(p, x["response_ids"], x["response_mask"]).backward()))
        model.zero_grad(set_to_none=True)
    print(f"backbone {backbone.name} ({backbone.model.dtype}), {args.threads} threads, responses <= {args.response_max_tokens} tokens")
    total = sum(np.median(v) for v in parts.values())
    for name, values in parts.items():
        print(f"  {name:8s} {np.median(values):6.2f} s per batch of 8  ({100 * np.median(values) / total:4.1f}% of a default step)")

    # ---- whole steps per schedule
    rows = []
    for b, r in SCHEDULES:
        t = trainer(b, r)
        seconds = []
        for _ in range(args.rounds):
            batch = [next(pool) for _ in range(b)]
            seconds.append(timed(lambda: sum(w * loss for w, loss in zip((1.0, 1.0), t.forward(batch, r)[:2])).backward()))
            model.zero_grad(set_to_none=True)
        step = float(np.median(seconds))
        recon = b if r is None else r
        rows.append((b, recon, step, 3600 * b / step, 3600 * recon / step))
    base = rows[0]
    print(f"\n  {'B':>3} {'R':>3} {'s/step':>7} {'align ex/h':>11} {'recon ex/h':>11} {'align x':>8}")
    for b, recon, step, align_h, recon_h in rows:
        print(f"  {b:3d} {recon:3d} {step:7.2f} {align_h:11.0f} {recon_h:11.0f} {align_h / base[3]:7.2f}x")


if __name__ == "__main__":
    main()
