import pytest
import torch

from encoder.device import cpu_has_fast_bf16, cpu_model, resolve_device, resolve_dtype


def test_explicit_dtype_wins():
    assert resolve_dtype("float32", torch.device("cpu")) is torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16


def test_auto_dtype_on_cpu_follows_native_bf16_support():
    expected = torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    assert resolve_dtype("auto", torch.device("cpu")) is expected


def test_auto_device_is_cuda_only_when_present():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_missing_cuda_explains_how_to_fall_back():
    with pytest.raises(RuntimeError, match="GENSEARCH_DEVICE=cpu"):
        resolve_device("cuda")


def test_cpu_model_is_read_from_cpuinfo_with_a_fallback():
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n") == "AMD EPYC 7B13"
    assert cpu_model("processor\t: 0\n")  # no model name line: platform's answer, never empty
