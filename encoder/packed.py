"""Linear layers whose weights are prepacked for oneDNN once, instead of on every call (CPU, inference only).

On the CPU, ``F.linear`` computes from a plain row-major weight on every call (for bf16 oneDNN lays it out into
its blocked format each time). For the few rows of one query (a dozen text tokens plus the K special tokens)
that costs about as much as the product itself. ``torch.ops.mkldnn._reorder_linear_weight`` does it once; it is
the op ``torch.compile`` uses when it freezes a CPU model, here without the compile. Products are the same up
to accumulation order (bf16: identical in the measurement below; fp32: ~1e-4 absolute on outputs of ~30).

Measured with 2 threads on a 2-core AMD EPYC with AVX512-BF16 (2026-12-03), a 4,864 x 896 weight (Qwen2.5-0.5B's
MLP): bf16 at 20 rows 1,130 -> 671 us, at 256 rows 5,798 -> 5,414 us; fp32 at 20 rows 3,215 -> 1,417 us. Not yet
measured on an AVX2-only CPU (``benchmarks/encode_paths.py --source queries --batch-size 1 --paths eager,packed``).

The packed op has no autograd formula: only modules that never train get packed layers.
"""

from __future__ import annotations

import logging
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class PackedLinear(nn.Module):
    """``nn.Linear``'s forward on a weight prepacked for oneDNN (the plain weight is not kept)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, packed=oneDNN"


@cache
def packing_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether this build and CPU can pack weights of ``dtype`` (tried once on a small layer against ``F.linear``)."""
    if device.type != "cpu" or not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        return False
    with torch.random.fork_rng(devices=[]):  # the probe's random numbers leave the caller's generator alone
        torch.manual_seed(0)
        probe = nn.Linear(16, 8).to(dtype)
        x = torch.randn(3, 16, dtype=dtype)
    try:
        with torch.no_grad():
            return torch.allclose(PackedLinear(probe)(x).float(), F.linear(x, probe.weight, probe.bias).float(), atol=1e-2, rtol=1e-2)
    except RuntimeError as error:  # e.g. bf16 on a CPU without AVX-512
        log.info("oneDNN weight packing unavailable for %s: %s", dtype, error)
        return False


def pack_linears(module: nn.Module) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by a ``PackedLinear``, in place; returns how many."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, PackedLinear(child))
                count += 1
    return count
