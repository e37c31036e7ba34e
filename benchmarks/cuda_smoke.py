"""CUDA smoke run of our code paths on a tiny random-weight Qwen2 built on the spot (nothing downloaded).

    .venv/bin/python benchmarks/cuda_smoke.py              # needs a CUDA device; exits 0 with a note without one
    .venv/bin/python benchmarks/cuda_smoke.py --device cpu # the same checks on CPU (what the test suite runs)

Self-contained, so it fits a machine that receives only the repository: a byte-level BPE tokenizer is
trained on a few sentences, a 2-layer Qwen2 config is instantiated with random weights, and then, in bf16
on CUDA (fp32 on CPU):

1. ``encode`` (query and document instructions), ``decode`` and the logit lens of an LLM2Vec-Gen adapter;
2. one training step of ``training.fit.Trainer`` (L_align + L_recon, prefix-KV path, mixed precision on CUDA)
   and a checkpoint;
3. greedy generation through ``encoder.generation.TransformersEngine`` (the CUDA engine);
4. an indexing run into an in-memory Qdrant and a hybrid search over it.

It checks shapes, finiteness and that the parameters moved; it measures nothing. Prints one JSON line per check.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SENTENCES = [
    "How do I reverse a list in Python?", "Use reversed(items) or items.reverse() to reverse a list.",
    "The view pg_stat_activity shows one row per server process.", "Tomatoes need six hours of sun a day.",
    "Summarize the following passage: ", "Generate a passage that best answers this question: ",
]  # fmt: skip


def tiny_backbone(device: torch.device, dtype: torch.dtype):
    """A random 2-layer Qwen2 with a BPE tokenizer trained here, as a gensearch ``Backbone``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from encoder.backbone import Backbone

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator(SENTENCES * 4, trainers.BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype).eval()
    model.requires_grad_(False)
    return Backbone(name="tiny-qwen2", model=model, tokenizer=tokenizer, sha256="0" * 64)


def report(check: str, started: float, **facts) -> None:
    print(json.dumps({"check": check, "seconds": round(time.perf_counter() - started, 2), **facts}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(json.dumps({"check": "cuda", "skipped": "no CUDA device here"}))
        return
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    print(json.dumps({"device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "dtype": str(dtype), "torch": torch.__version__}))

    from encoder.generation import TransformersEngine
    from encoder.llm2vec_gen import LLM2VecGenEncoder
    from training.fit import Example, FitConfig, Trainer

    backbone = tiny_backbone(device, dtype)
    encoder = LLM2VecGenEncoder.fresh(backbone, num_tokens=4, teacher_dim=16)

    started = time.perf_counter()
    queries = encoder.encode(SENTENCES[:3], task="query", batch_size=2)
    documents = encoder.encode(SENTENCES[1:4], task="document")
    assert queries.shape == (3, 16) and np.isfinite(queries).all() and np.allclose(np.linalg.norm(documents, axis=1), 1, atol=1e-3)
    decoded = encoder.decode(SENTENCES[:2], max_new_tokens=6)
    lens = encoder.logit_lens(SENTENCES[:1], top_k=3)
    assert len(decoded) == 2 and len(lens[0]) == 4 and len(lens[0][0]) == 3
    report("encode, decode, logit lens", started, shape=list(queries.shape))

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    examples = [Example(s, s + "<|im_end|>", rng.normal(size=16).astype(np.float32)) for s in SENTENCES]
    with tempfile.TemporaryDirectory() as out:
        config = FitConfig(epochs=1, batch_size=3, lr=1e-2, warmup_steps=1, checkpoint_every=1, mixed_precision="bf16" if device.type == "cuda" else "no")
        before = encoder.model.special.detach().clone()
        run = Trainer(encoder, examples, examples[:2], config, Path(out)).run()
        moved = float((encoder.model.special.detach() - before).abs().max())
        assert run["complete"] and moved > 0 and (Path(out) / "checkpoint.pt").is_file()
    report("training step", started, steps=run["steps"], special_rows_moved=moved)

    started = time.perf_counter()
    answers = TransformersEngine(backbone, batch_size=2).answer(SENTENCES[:3], system=None, max_new_tokens=8)
    assert len(answers) == 3
    report("generation (transformers engine)", started, answers=len(answers))

    started = time.perf_counter()
    from qdrant_client import QdrantClient

    from encoder import get_settings
    from indexer.corpus import Corpus, SourceDoc
    from indexer.pipeline import index_corpus
    from indexer.search import search

    client = QdrantClient(location=":memory:")
    corpus = Corpus("smoke", docs=[SourceDoc(f"doc{i}", s, "text", "") for i, s in enumerate(SENTENCES[1:4])])
    indexed = index_corpus(client, encoder, corpus, "smoke", settings=get_settings(), show_progress=False)
    hits = search(client, encoder, "smoke", "pg_stat_activity", k=2, mode="hybrid").hits
    assert indexed.added == 3 and hits
    report("index + hybrid search", started, chunks=indexed.added, top=hits[0].source)


if __name__ == "__main__":
    main()
