"""The mean-pooled sentence encoders behind the same interface (real baseline model)."""

import numpy as np
import pytest

from encoder import load_encoder
from encoder.sentence import mean_pool


@pytest.fixture(scope="module")
def baseline():
    return load_encoder("baseline", device="cpu")


def test_baseline_has_its_name_and_dimension(baseline):
    assert (baseline.name, baseline.dim) == ("all-minilm-l6-v2", 384)


def test_related_sentences_are_closer_than_unrelated_ones(baseline):
    a, b, c = baseline.encode(["How do I sort a list?", "Sorting a list in Python", "The weather in Paris is rainy"])
    assert a @ b > a @ c + 0.2


def test_batching_does_not_change_vectors(baseline):
    texts = ["short", "a somewhat longer sentence about databases", "mid length text"]
    together = baseline.encode(texts, batch_size=3)
    alone = np.stack([baseline.encode(t)[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_mean_pool_ignores_padding():
    import torch

    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 2.0]]))


def test_mean_pool_sums_in_fp32_whatever_the_model_dtype():
    import torch

    hidden = torch.full((1, 300, 4), 1.0 + 2**-7, dtype=torch.bfloat16)  # bf16 sums of 300 such values round off
    pooled = mean_pool(hidden, torch.ones(1, 300, dtype=torch.long))
    assert pooled.dtype == torch.float32
    assert torch.allclose(pooled, torch.full((1, 4), 1.0 + 2**-7))


def test_sentence_encoders_follow_the_dtype_setting_and_keep_their_vectors():
    import torch

    texts = ["How do I sort a list?", "The weather in Paris is rainy, and the trains are late again."]
    bf16 = load_encoder("baseline", device="cpu", dtype="bfloat16")
    fp32 = load_encoder("baseline", device="cpu", dtype="float32")
    assert bf16.model.dtype == torch.bfloat16 and fp32.model.dtype == torch.float32
    cosines = (bf16.encode(texts) * fp32.encode(texts)).sum(1)
    assert bf16.encode(texts).dtype == np.float32 and cosines.min() > 0.999


def test_packed_weights_keep_the_vectors():
    import torch

    from encoder.fetch import ensure_model
    from encoder.sentence import SentenceEncoder
    from encoder.settings import get_settings

    texts = ["How do I sort a list?", "The weather in Paris is rainy, and the trains are late again."]
    folder = ensure_model("all-minilm-l6-v2", get_settings())
    plain = SentenceEncoder(folder, "all-minilm-l6-v2", torch.device("cpu"))
    packed = SentenceEncoder(folder, "all-minilm-l6-v2", torch.device("cpu"), pack=True)
    if not packed.packed:
        pytest.skip("no oneDNN weight packing in this torch build")
    assert not plain.packed and not any(isinstance(m, torch.nn.Linear) for m in packed.model.modules())
    np.testing.assert_allclose(packed.encode(texts), plain.encode(texts), atol=1e-5)


def test_each_sentence_encoder_cuts_inputs_where_its_own_config_says():
    from encoder import load_encoder

    assert load_encoder("baseline", device="cpu").max_length == 256  # all-MiniLM-L6-v2's sentence_bert_config.json
    assert load_encoder("teacher", device="cpu").max_length == 384  # all-mpnet-base-v2's


def test_the_sentence_encoders_are_sentence_transformers_models_with_their_own_vectors():
    """Loaded through sentence-transformers from the model's folder: the same vectors as SentenceTransformer(folder)."""
    from sentence_transformers import SentenceTransformer

    from encoder import load_encoder
    from encoder.fetch import ensure_model
    from encoder.settings import get_settings

    texts = ["How do I sort a list?", "The weather in Paris is rainy, and the trains are late again. " * 40]  # the second is cut at 256
    ours = load_encoder("baseline", device="cpu", dtype="float32")
    reference = SentenceTransformer(str(ensure_model("all-minilm-l6-v2", get_settings())), device="cpu")
    assert float((ours.encode(texts) * reference.encode(texts)).sum(1).min()) >= 0.9999
