"""The default Qwen2.5-Coder-0.5B backbone end to end (loads in seconds from the dequantised cache)."""

import numpy as np
import pytest

from encoder import load_encoder

pytestmark = pytest.mark.slow

TEXTS = ["How do I read a CSV file in Python?", "What does git rebase do?", "hi"]


@pytest.fixture(scope="module")
def default_encoder():
    return load_encoder(dtype="float32", device="cpu")


def test_default_encoder_is_llm2vec_gen_on_qwen(default_encoder):
    assert default_encoder.backbone.name == "qwen2.5-coder-0.5b-instruct"
    assert default_encoder.backbone.hidden_size == 896 and default_encoder.dim == 768


def test_batch_invariance_on_the_default_backbone(default_encoder):
    batched = default_encoder.encode(TEXTS, batch_size=3)
    alone = np.stack([default_encoder.encode(t)[0] for t in TEXTS])
    assert (batched * alone).sum(axis=1).min() >= 0.999


def test_decode_writes_text_with_the_shared_backbone(default_encoder):
    decoded = default_encoder.decode(TEXTS[:2], max_new_tokens=6)
    assert len(decoded) == 2 and all(isinstance(d, str) for d in decoded)
    assert load_encoder(dtype="float32", device="cpu").backbone.model is default_encoder.backbone.model
