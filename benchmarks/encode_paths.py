"""Faster CPU encode paths vs eager: passages/s and per-vector cosine, same passages, one run (issue 18).

Every path computes the same special-token states behind the same ``encoder.encode(texts, task="document")``
(``--source queries``: the FAQ questions with ``task="query"``; with ``--batch-size 1``, single-query latency):
the backbone's base model is swapped for the path's module (``encoder.encode_paths``) and restored
after. Paths: ``eager`` (in ``--dtype``, the reference), ``packed`` (oneDNN-prepacked linear weights), ``bf16`` (a bf16 copy of the base model), ``compile`` and ``compile-max-autotune``
(``torch.compile(dynamic=True)``), ``int8`` / ``int8-channel`` (torch dynamic int8 Linear layers on a
copy of the base model), ``onnx`` (ONNX Runtime, fp32 export with ``inputs_embeds``) and ``onnx-int8``
(that graph with weight-only int8 MatMulNBits). All keep the cached instruction keys/values (computed
once by eager fp32 and shared); the ONNX paths take them as graph inputs.

Not a candidate here: llama.cpp on the shipped GGUF. The encoder needs the final-norm hidden states of
rows built from token embeddings plus K trained vectors (``inputs_embeds``) after cached instruction
keys/values; the llama.cpp binding in the venv (xllamacpp) is a server wrapper that takes token ids, not
embeddings, and returns pooled embeddings, so it cannot compute ``special_states``.

Each path is built and warmed up first (build and warm-up seconds reported apart: compile and export
are paid once per process / once per machine); then ``--rounds`` rounds each encode all passages with
every path, the order rotating each round so background load hits all alike. Cosine is per vector
against the eager vectors of the same passages; a path is accepted when its min cosine is >= 0.999
(``--ndcg`` also checks FAQ nDCG@10 within 0.005 of eager).

    .venv/bin/python benchmarks/encode_paths.py [--backbone default] [--passages 64] [--paths eager,compile,int8,onnx,onnx-int8]
        [--source safety|faq|queries] [--dtype float32|bfloat16] [--batch-size 16] [--max-length N] [--rounds 2] [--ndcg]
        [--out reports/encode_paths.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from encoder import get_settings, load_encoder
from encoder.device import cpu_model
from encoder.encode_paths import PATHS, OnnxBaseModel, PathModule, base_model_of, build_path, default_onnx_dir, export_onnx, use_path

DEFAULT_PATHS = "eager,packed,bf16,compile,int8,int8-channel,onnx,onnx-int8"
REJECTED = ("compile", "compile-max-autotune", "int8", "int8-channel", "onnx-int8")  # measured here, not in the product
CANDIDATES = (*PATHS, *REJECTED)


def build_candidate(name: str, enc, onnx_dir, onnx_int8_accuracy: int = 4) -> PathModule | None:
    """A product path (``encoder.encode_paths.build_path``) or one of the rejected ones, built here:
    ``compile`` / ``compile-max-autotune`` (torch.compile, dynamic shapes), ``int8`` / ``int8-channel`` (torch dynamic
    int8 ``nn.Linear``, weights per tensor / per channel), ``onnx-int8`` (the ONNX export with weight-only int8
    ``MatMulNBits``, block 32; ``accuracy_level`` 4 computes with int8 activations per block, 0 dequantises)."""
    if name in PATHS:
        return build_path(name, enc, onnx_dir=onnx_dir)
    base = base_model_of(enc)
    if name in ("compile", "compile-max-autotune"):
        mode = "max-autotune-no-cudagraphs" if name == "compile-max-autotune" else None
        return PathModule(base, torch.compile(base, dynamic=True, mode=mode), name)
    if name in ("int8", "int8-channel"):
        return PathModule(base, quantized_int8(base, per_channel=name == "int8-channel"), name)
    if name == "onnx-int8":
        folder = Path(onnx_dir)
        model = quantize_onnx_int8(export_onnx(base, folder / "fp32" / "model.onnx"), folder / f"int8-acc{onnx_int8_accuracy}" / "model.onnx", onnx_int8_accuracy)
        return PathModule(base, OnnxBaseModel(model, base), name)
    raise ValueError(f"unknown encode path {name!r}; choose from {', '.join(CANDIDATES)}")


def quantized_int8(base: nn.Module, per_channel: bool = False) -> nn.Module:
    """Dynamic int8 ``nn.Linear`` layers on a copy of ``base`` (its token embeddings shared, not copied)."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    shared = {id(base.embed_tokens): base.embed_tokens} if hasattr(base, "embed_tokens") else {}
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    return quantize_dynamic(copy.deepcopy(base, memo=shared), {nn.Linear: qconfig}, dtype=torch.qint8).eval()




def quantize_onnx_int8(source: Path, path: Path, accuracy_level: int = 4) -> Path:
    """Weight-only int8 (``MatMulNBits``, block 32, symmetric) copy of an exported model, made once."""
    if path.exists():
        return path
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    path.parent.mkdir(parents=True, exist_ok=True)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(source)), bits=8, block_size=32, is_symmetric=True, accuracy_level=accuracy_level)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer.process()
    quantizer.model.save_model_to_file(str(path), True)
    return path
MIN_COSINE = 0.999
MAX_NDCG_DROP = 0.005


def load_passages(source: str, n: int, settings, seed: int = 0) -> list[str]:
    """``n`` evaluation texts: the mixed safety corpus (labels interleaved), the FAQ answers or the FAQ questions."""
    from evaluation.datasets import faq_dataset, safety_corpus, sample

    if source == "queries":
        return [q.text for q in sample(faq_dataset(settings)[0], n, seed)]
    if source == "faq":
        return [p.text for p in faq_dataset(settings)[1]][:n]
    labels = 3
    corpus = safety_corpus(settings, per_label=math.ceil(n / labels), seed=seed)
    by_label: dict[str, list[str]] = {}
    for passage in corpus:
        by_label.setdefault(passage.label, []).append(passage.text)
    interleaved = [text for group in zip(*by_label.values()) for text in group]
    rest = [t for texts in by_label.values() for t in texts if t not in set(interleaved)]
    return (interleaved + rest)[:n]


def faq_ndcg(encoder, module, queries, passages, k: int = 10) -> float:
    """FAQ nDCG@k of dense retrieval with ``module`` as the base model (the evaluation's task)."""
    from evaluation.metrics import ndcg_at_k

    with use_path(encoder, module):
        docs = encoder.encode([p.text for p in passages], task="document", show_progress_bar=False)
        qs = encoder.encode([q.text for q in queries], task="query", show_progress_bar=False)
    ids = [p.id for p in passages]
    order = np.argsort(-(qs @ docs.T), axis=1)[:, :k]
    return float(np.mean([ndcg_at_k([ids[j] for j in row], q.relevant, k) for row, q in zip(order, queries)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="default", help="registry name, folder or hub id ('test' = SmolLM2-135M)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="the backbone's dtype; the reference is eager in it")
    parser.add_argument("--source", default="safety", choices=["safety", "faq", "queries"], help="the evaluation's safety corpus, FAQ answers or FAQ questions")
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--paths", default=DEFAULT_PATHS, help=f"comma-separated, from {','.join(CANDIDATES)} (eager is always run)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=None, help="token limit per text (default: the encoder's)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--onnx-dir", default=None, help="where exports are kept (default: <cache_dir>/onnx/<backbone>-<hash>)")
    parser.add_argument("--onnx-int8-accuracy", type=int, default=4, choices=[0, 1, 2, 3, 4], help="MatMulNBits accuracy_level (4: int8 compute)")
    parser.add_argument("--ndcg", action="store_true", help="also FAQ nDCG@10 per accepted path (encodes all FAQ passages and queries)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    names = ["eager"] + [p for p in dict.fromkeys(args.paths.split(",")) if p and p != "eager"]
    for name in names:
        if name not in CANDIDATES:
            parser.error(f"unknown path {name!r}; choose from {', '.join(CANDIDATES)}")
    settings = get_settings().model_copy(update={"encode_path": "eager"})  # paths are swapped in here, none installed
    enc = load_encoder(args.backbone, settings=settings, dtype=args.dtype, device="cpu")
    task = "query" if args.source == "queries" else "document"
    if args.max_length:
        enc.max_length = args.max_length
    texts = load_passages(args.source, args.passages, settings)
    onnx_dir = args.onnx_dir or default_onnx_dir(enc, settings.cache_dir)
    tokens = sum(len(t) for t in enc.tokenize(texts, task))

    def encode(module) -> np.ndarray:
        with use_path(enc, module):
            return enc.encode(texts, task=task, batch_size=args.batch_size, show_progress_bar=False)

    modules, setup, skipped = {}, {}, {}
    enc.encode(texts[:2], task=task, show_progress_bar=False)  # eager warm-up; builds the instruction cache
    for name in names:
        started = time.perf_counter()
        try:
            modules[name] = build_candidate(name, enc, onnx_dir, args.onnx_int8_accuracy)
            built = time.perf_counter()
            with use_path(enc, modules[name]):
                enc.encode(texts[:2], task=task, show_progress_bar=False)
                enc.encode(texts[2:5] or texts[:1], task=task, show_progress_bar=False)  # a second shape (dynamic dims)
        except Exception as error:  # noqa: BLE001 - a candidate that cannot run is reported, not fatal
            skipped[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
            modules.pop(name, None)
            print(f"skip {name}: {skipped[name]}", flush=True)
            continue
        setup[name] = {"build_s": built - started, "warmup_s": time.perf_counter() - built}
        print(f"ready {name}: build {setup[name]['build_s']:.1f} s, warm-up {setup[name]['warmup_s']:.1f} s", flush=True)

    run = list(modules)
    seconds = dict.fromkeys(run, 0.0)
    per_round: dict[str, list[float]] = {name: [] for name in run}
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.rounds):
        order = run[r % len(run) :] + run[: r % len(run)]
        for name in order:
            started = time.perf_counter()
            vectors[name] = encode(modules[name])
            per_round[name].append(time.perf_counter() - started)
            seconds[name] += per_round[name][-1]
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {len(texts) * (r + 1) / seconds[n]:.2f}/s" for n in run), flush=True)

    reference = vectors["eager"]
    rows = []
    for name in run:
        cosine = (vectors[name] * reference).sum(axis=1)
        rate = len(texts) * args.rounds / seconds[name]
        rows.append({
            "path": name,
            "passages_per_s": rate,
            "tokens_per_s": tokens * args.rounds / seconds[name],
            "ratio_vs_eager": rate / (len(texts) * args.rounds / seconds["eager"]),
            "ratio_median_of_rounds": statistics.median(e / t for e, t in zip(per_round["eager"], per_round[name])),
            "round_seconds": per_round[name],
            "min_cosine": float(cosine.min()),
            "mean_cosine": float(cosine.mean()),
            "reproduces": bool(cosine.min() >= MIN_COSINE),
            **setup[name],
        })
    if args.ndcg:
        from evaluation.datasets import faq_dataset

        queries, passages = faq_dataset(settings)
        base_ndcg = faq_ndcg(enc, None, queries, passages)
        for row in rows:
            if row["path"] == "eager":
                row["ndcg@10"] = base_ndcg
            elif row["reproduces"]:
                row["ndcg@10"] = faq_ndcg(enc, modules[row["path"]], queries, passages)
                row["reproduces"] = abs(row["ndcg@10"] - base_ndcg) <= MAX_NDCG_DROP

    header = {
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "backbone": enc.backbone.name,
        "dtype": str(base_dtype(enc)),
        "source": args.source,
        "passages": len(texts),
        "tokens": tokens,
        "max_length": enc.max_length,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "min_cosine_required": MIN_COSINE,
    }
    print(" ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in header.items()))
    ndcg = " | nDCG@10" if args.ndcg else ""
    print(f"| path | passages/s | ratio vs eager (median of rounds) | min cosine | mean cosine | build s | warm-up s{ndcg} | accepted |")
    print("|---|---|---|---|---|---|---|" + ("---|" if args.ndcg else "") + "---|")
    for row in rows:
        extra = f" | {row['ndcg@10']:.4f}" if "ndcg@10" in row else (" | -" if args.ndcg else "")
        print(f"| {row['path']} | {row['passages_per_s']:.2f} | {row['ratio_vs_eager']:.2f}x ({row['ratio_median_of_rounds']:.2f}x) | {row['min_cosine']:.5f} | {row['mean_cosine']:.5f} | "
              f"{row['build_s']:.1f} | {row['warmup_s']:.1f}{extra} | {'yes' if row['reproduces'] else 'NO'} |")
    for name, why in skipped.items():
        print(f"| {name} | skipped: {why} |")
    accepted = [r for r in rows if r["reproduces"] and r["path"] != "eager"]
    best = max(accepted, key=lambda r: r["ratio_vs_eager"], default=None)
    if best:
        met = "met" if min(best["ratio_vs_eager"], best["ratio_median_of_rounds"]) >= 2 else "NOT met"
        print(f"fastest accepted path: {best['path']} ({best['ratio_vs_eager']:.2f}x eager overall, {best['ratio_median_of_rounds']:.2f}x median of rounds); 2x target {met}")
    else:
        print("no candidate reproduces the eager vectors")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**header, "results": rows, "skipped": skipped}, indent=2) + "\n")


def base_dtype(enc) -> torch.dtype:
    return enc.model.lm_dtype


if __name__ == "__main__":
    main()
