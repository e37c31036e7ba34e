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


@pytest.mark.skipif(not packing_works(torch.device("cpu"), torch.bfloat16), reason="no bf16 weight packing on this CPU")
def test_packed_bf16_products_are_the_unpacked_ones():
    torch.manual_seed(0)
    linear = nn.Linear(896, 512).to(torch.bfloat16)
    x = torch.randn(1, 20, 896, dtype=torch.bfloat16)  # one query: ~20 rows, the case packing is for
    with torch.no_grad():
        torch.testing.assert_close(PackedLinear(linear)(x).float(), linear(x).float(), atol=2e-2, rtol=2e-2)


def test_packing_is_never_offered_off_the_cpu_and_leaves_the_random_generator_alone():
    assert not packing_works(torch.device("meta"), torch.float32)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    packing_works.cache_clear()
    packing_works(torch.device("cpu"), torch.float32)
    assert torch.equal(torch.rand(3), expected)
