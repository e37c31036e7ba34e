"""The untrained floor encoder: mean of the backbone's final states, independent of batch neighbours."""

from __future__ import annotations

import numpy as np
import torch

from encoder.backbone_mean import BackboneMeanEncoder
from encoder.sentence import mean_pool


def test_mean_of_final_states_and_padding_invariance(smol_backbone):
    enc = BackboneMeanEncoder(smol_backbone)
    texts = ["a short one", "a much longer text about reading files line by line in Python with open()"]
    together = enc.encode(texts, batch_size=2, normalize_embeddings=False)
    alone = np.stack([enc.encode([t], normalize_embeddings=False)[0] for t in texts])
    assert together.shape == (2, smol_backbone.hidden_size) == (2, enc.dim)
    np.testing.assert_allclose(together, alone, atol=1e-4)  # right padding + mask: neighbours do not matter
    ids = torch.tensor([smol_backbone.tokenizer(texts[0])["input_ids"]])
    with torch.inference_mode():
        hidden = smol_backbone.model.base_model(input_ids=ids).last_hidden_state
    np.testing.assert_allclose(alone[0], mean_pool(hidden, torch.ones_like(ids))[0].numpy(), atol=1e-4)
    unit = enc.encode(texts)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
