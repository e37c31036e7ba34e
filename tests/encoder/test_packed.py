"""Prepacked oneDNN linear layers (``encoder.packed``): the same products as ``nn.Linear``, CPU only."""

import pytest
import torch
from torch import nn

from encoder.packed import PackedLinear, pack_linears, packing_works

needs_packing = pytest.mark.skipif(not packing_works(torch.device("cpu"), torch.float32), reason="no oneDNN weight packing in this torch build")


@needs_packing
@pytest.mark.parametrize("rows", [1, 7, 300])
def test_packed_linear_computes_what_linear_does_for_any_number_of_rows(rows):
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    x = torch.randn(2, rows, 64)  # (B, T, in): the leading dimensions are kept
    with torch.no_grad():
        torch.testing.assert_close(PackedLinear(linear)(x), linear(x), atol=1e-5, rtol=1e-4)
        assert PackedLinear(nn.Linear(64, 48, bias=False))(x).shape == (2, rows, 48)


@needs_packing
def test_pack_linears_replaces_every_linear_in_place_and_keeps_the_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16)), nn.Linear(16, 4))
    x = torch.randn(5, 8)
    with torch.no_grad():
        expected = model(x)
        assert pack_linears(model) == 3
        assert not any(isinstance(m, nn.Linear) for m in model.modules())
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-4)


def test_packing_is_never_offered_off_the_cpu():
    assert not packing_works(torch.device("meta"), torch.float32)
