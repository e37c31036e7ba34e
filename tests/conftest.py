"""Shared fixtures: real cached models (fetched by `make test`) and a tiny random backbone."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# fp32 everywhere (subprocesses included): dtype "auto" picks bf16 on CPUs with AVX512-BF16/AMX, whose rounding
# breaks the exactness the tests specify (a vector does not depend on its batch neighbours, cosine >= 0.999).
os.environ.setdefault("GENSEARCH_DTYPE", "float32")


@pytest.fixture(scope="session")
def smol_backbone():
    """The real SmolLM2-135M-Instruct backbone (fp32), loaded once per test session."""
    from encoder.backbone import load_backbone

    return load_backbone("test", "cpu", torch.float32)


@pytest.fixture(scope="session")
def smol_encoder():
    """LLM2Vec-Gen on the real SmolLM2 backbone (fp32, the shipped test adapter if there is one)."""
    from encoder import load_encoder

    return load_encoder("test", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_backbone(smol_backbone):
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: for fast shape/gradient tests."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from encoder.backbone import Backbone

    tokenizer = smol_backbone.tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return Backbone(name="tiny-llama", model=model, tokenizer=tokenizer, sha256="0" * 64)
