"""Alternative forward paths for the frozen backbone, behind the same ``encode`` API (issue 18).

``LLM2VecGen.special_states`` calls ``lm.base_model(inputs_embeds=..., attention_mask=...,
position_ids=..., past_key_values=<the cached instruction keys/values>)``. A *path* is a module
that stands in for that base model (``lm.model``) and computes the same ``last_hidden_state``
another way; ``use_path(encoder, module)`` swaps it in for a block and restores the original.

Paths (``build_path(name, encoder)``):

- ``eager``: the base model itself (the reference).
- ``packed``: a copy of the base model (token embeddings not copied) whose linear layers hold weights prepacked
  for oneDNN (``encoder.packed``): the same vectors (cosine >= 0.9999999 on the 0.5B in bf16), 1.6x (bf16) to 2x
  (fp32) faster per single query on the CPU; the default. One copy per base model, shared by its encoders. Nothing to add (``None``) off the CPU or where packing does not work.
- ``bf16``: a copy of the base model with bf16 weights (token embeddings not copied: the rows arrive as
  ``inputs_embeds``; rotary frequencies kept fp32), fed bf16 rows and the instruction's keys/values cast to bf16,
  its states returned in the reference dtype. Nothing to add (``None``) when the backbone already runs in bf16.
  Fast where the CPU has native bf16 matmuls (AMX / AVX512-BF16), ~3.6x slower where it emulates them.
- ``onnx``: the base model exported (``torch.onnx.export(dynamo=True)``) with ``inputs_embeds``,
  ``attention_mask``, ``position_ids`` and the instruction's keys/values as inputs, run by ONNX Runtime
  (fp32). Needs ``pip install onnxruntime onnxscript onnx`` (not a dependency of gensearch).

Paths the benchmarks measured and rejected (``torch.compile``: ~1.1x after minutes of warm-up; int8 weights in
torch or ONNX: vectors off, cosine 0.70 / 0.993) live in ``benchmarks/encode_paths.py`` only.

Every path keeps the instruction cache: calls with ``input_ids`` (``LLM2VecGen.prefix_kv``, once per
instruction and encoder) go to the eager base model, calls with ``inputs_embeds`` to the path.
``benchmarks/encode_paths.py`` measures them (and the rejected ones) against eager on the evaluation's passages;
``install_path`` (``GENSEARCH_ENCODE_PATH``, default ``packed``) makes one the encoder's for good.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPast

from .packed import pack_linears, packing_works

log = logging.getLogger(__name__)

PATHS = ("eager", "packed", "bf16", "onnx")


class PathModule(nn.Module):
    """Stands in for a base model: ``inputs_embeds`` calls go to ``fast`` inside ``active()`` (in that
    thread only), everything else to ``eager`` (prefix keys/values, ``generate``, other threads).

    Attributes it does not have (``embed_tokens``, ``config``, ...) are the eager model's."""

    def __init__(self, eager: nn.Module, fast: Callable[..., BaseModelOutputWithPast], name: str):
        super().__init__()
        object.__setattr__(self, "eager", eager)  # not a submodule: no second copy in state_dict()
        object.__setattr__(self, "fast", fast)
        object.__setattr__(self, "_local", threading.local())
        self.path_name = name

    @contextmanager
    def active(self) -> Iterator[None]:
        previous = getattr(self._local, "on", False)
        self._local.on = True
        try:
            yield
        finally:
            self._local.on = previous

    def forward(self, input_ids=None, inputs_embeds=None, **kwargs):
        if inputs_embeds is None or not getattr(self._local, "on", False):
            return self.eager(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)
        return self.fast(inputs_embeds=inputs_embeds, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "eager"), name)


def base_model_of(encoder) -> nn.Module:
    lm = encoder.model.lm
    module = getattr(lm, lm.base_model_prefix)
    return module.eager if isinstance(module, PathModule) else module


@contextmanager
def use_path(encoder, module: PathModule | None) -> Iterator[None]:
    """Run ``encoder`` with ``module`` as its base model inside the block (``None``: unchanged)."""
    if module is None:
        yield
        return
    lm = encoder.model.lm
    original = getattr(lm, lm.base_model_prefix)
    setattr(lm, lm.base_model_prefix, module)
    try:
        with module.active():
            yield
    finally:
        setattr(lm, lm.base_model_prefix, original)


def install_path(encoder, name: str, **options) -> PathModule | None:
    """Make ``name`` the path of ``encoder``'s special states (``encode``, ``encode_with_lens``, lens);
    ``decode`` and anything else sharing the backbone keep the eager model. What ``GENSEARCH_ENCODE_PATH`` does."""
    module = build_path(name, encoder, **options)
    if module is not None:
        batch = encoder.special_states_batch

        def special_states_batch(token_ids: list[list[int]]) -> torch.Tensor:
            with use_path(encoder, module):
                return batch(token_ids)

        encoder.special_states_batch = special_states_batch
        encoder.encode_path = name
    return module


def build_path(name: str, encoder, onnx_dir: str | Path | None = None) -> PathModule | None:
    """The module for path ``name`` on ``encoder``'s base model (``None`` for eager). The ONNX paths need
    ``onnx_dir``, where the export is kept (``default_onnx_dir(encoder, settings.cache_dir)``)."""
    if name not in PATHS:
        raise ValueError(f"unknown encode path {name!r}; choose from {', '.join(PATHS)}")
    base = base_model_of(encoder)
    if name == "eager":
        return None
    if name == "packed":
        if not packing_works(encoder.device, base.dtype):
            log.info("encode path packed: no oneDNN weight packing for %s on %s, nothing to add", base.dtype, encoder.device)
            return None
        return PathModule(base, PackedBaseModel(base), name)
    if name == "bf16":
        if base.dtype == torch.bfloat16:
            log.info("encode path bf16: the backbone already runs in bf16, nothing to add")
            return None
        return PathModule(base, CastBaseModel(base, torch.bfloat16), name)
    if name == "onnx":
        if encoder.device.type != "cpu":
            raise ValueError(f"encode path {name!r} runs on the CPU only; the encoder is on {encoder.device}")
        if not onnx_dir:
            raise ValueError(f"encode path {name!r} needs onnx_dir (e.g. default_onnx_dir(encoder, settings.cache_dir))")
        folder = Path(onnx_dir)
        return PathModule(base, OnnxBaseModel(export_onnx(base, folder / "fp32" / "model.onnx"), base), name)
    raise AssertionError(name)


def copy_without_embeddings(base: nn.Module) -> nn.Module:
    """A deep copy of ``base`` in eval mode whose token embeddings are an ``nn.Identity`` (a path's rows arrive as
    ``inputs_embeds``, so the copy never looks tokens up)."""
    skip = {id(base.embed_tokens): nn.Identity()} if hasattr(base, "embed_tokens") else {}
    return copy.deepcopy(base, memo=skip).eval()


# --------------------------------------------------------------------------- packed


_PACKED: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def packed_copy(base: nn.Module) -> nn.Module:
    """A copy of ``base`` with oneDNN-packed linear layers, made once per base model (encoders sharing a backbone
    share it)."""
    if base not in _PACKED:
        model = copy_without_embeddings(base)
        log.info("encode path packed: %d linear layers packed", pack_linears(model))
        _PACKED[base] = model
    return _PACKED[base]


class PackedBaseModel:
    """Calls the packed copy of ``base``; rows of another dtype or device than it was packed for (the model was cast
    or moved since, e.g. ``SentenceTransformer(...).half()``) go to ``base`` itself."""

    def __init__(self, base: nn.Module):
        self.base, self.model = base, packed_copy(base)
        self.dtype, self.device = base.dtype, base.device

    def __call__(self, inputs_embeds, **kwargs) -> BaseModelOutputWithPast:
        model = self.model if (inputs_embeds.dtype, inputs_embeds.device) == (self.dtype, self.device) else self.base
        return model(inputs_embeds=inputs_embeds, **kwargs)


# --------------------------------------------------------------------------- bf16


class CastBaseModel:
    """A copy of ``base`` in ``dtype``, called like it: rows and cached keys/values are cast in, states cast out."""

    def __init__(self, base: nn.Module, dtype: torch.dtype):
        self.model = copy_without_embeddings(base)
        with torch.no_grad():  # parameters only: buffers (the rotary frequencies) stay fp32, as from_pretrained keeps them
            for param in self.model.parameters():
                param.data = param.data.to(dtype)
        self.dtype, self.out_dtype = dtype, base.dtype

    def __call__(self, inputs_embeds, past_key_values=None, **kwargs) -> BaseModelOutputWithPast:
        from transformers import DynamicCache

        if past_key_values is not None:
            layers = [(layer.keys.to(self.dtype), layer.values.to(self.dtype)) for layer in past_key_values.layers]
            past_key_values = DynamicCache(layers, config=self.model.config)
        out = self.model(inputs_embeds=inputs_embeds.to(self.dtype), past_key_values=past_key_values, **kwargs)
        return BaseModelOutputWithPast(last_hidden_state=out.last_hidden_state.to(self.out_dtype))


# --------------------------------------------------------------------------- ONNX Runtime


class _ExportWrapper(nn.Module):
    """The base model as a function of plain tensors: the instruction's keys/values come stacked,
    (layers, 1, kv_heads, P, head_dim), and are expanded to the batch inside the graph; the mask covers
    the rows only (the instruction is never padded)."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, inputs_embeds, attention_mask, position_ids, past_keys, past_values):
        from transformers import DynamicCache

        batch = inputs_embeds.shape[0]
        layers = [(past_keys[i].expand(batch, -1, -1, -1), past_values[i].expand(batch, -1, -1, -1)) for i in range(past_keys.shape[0])]
        cache = DynamicCache(layers, config=self.base.config)
        mask = torch.cat([attention_mask.new_ones(batch, past_keys.shape[3]), attention_mask], dim=1)
        out = self.base(inputs_embeds=inputs_embeds, attention_mask=mask, position_ids=position_ids, past_key_values=cache, use_cache=True)
        return out.last_hidden_state


ONNX_INPUTS = ("inputs_embeds", "attention_mask", "position_ids", "past_keys", "past_values")


def _kv_shape(config) -> tuple[int, int, int]:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers, config.num_key_value_heads, head_dim


def default_onnx_dir(encoder, cache_dir: str | Path) -> Path:
    """A folder per backbone (name, weights hash, dtype, torch version) under ``cache_dir`` (``Settings.cache_dir``)."""
    base = base_model_of(encoder)
    key = hashlib.sha256(f"{encoder.backbone.name}|{encoder.backbone.sha256}|{base.dtype}|{torch.__version__}".encode()).hexdigest()[:12]
    return Path(cache_dir) / "onnx" / f"{encoder.backbone.name}-{key}"


def export_onnx(base: nn.Module, path: Path) -> Path:
    """Export ``base`` (fp32) to ``path`` once; a later call with the file present reuses it."""
    if path.exists():
        return path
    from torch.export import Dim

    path.parent.mkdir(parents=True, exist_ok=True)
    layers, kv_heads, head_dim = _kv_shape(base.config)
    batch, seq, past = Dim("batch"), Dim("seq"), Dim("past")
    mask = torch.ones(2, 17, dtype=torch.long)
    mask[0, :3] = 0
    example = (
        torch.randn(2, 17, base.config.hidden_size, dtype=base.dtype) * 0.05,
        mask,
        (mask.cumsum(1) - 1).clamp(min=0) + 5,
        torch.randn(layers, 1, kv_heads, 5, head_dim, dtype=base.dtype),
        torch.randn(layers, 1, kv_heads, 5, head_dim, dtype=base.dtype),
    )
    rows = {0: batch, 1: seq}
    started = time.perf_counter()
    partial = path.with_suffix(".partial.onnx")
    torch.onnx.export(
        _ExportWrapper(base).eval(),
        example,
        str(partial),
        dynamo=True,
        input_names=list(ONNX_INPUTS),
        output_names=["last_hidden_state"],
        dynamic_shapes={"inputs_embeds": rows, "attention_mask": rows, "position_ids": rows, "past_keys": {3: past}, "past_values": {3: past}},
        external_data=True,
        verbose=False,
    )
    _rename_onnx(partial, path)
    log.info("exported %s in %.0f s", path, time.perf_counter() - started)
    return path


def _rename_onnx(source: Path, target: Path) -> None:
    """Move an exported model and its external data into place (the data file name is kept inside)."""
    import onnx

    model = onnx.load(str(source))
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True, location=target.name + ".data")
    for leftover in source.parent.glob(source.name + "*"):
        leftover.unlink()


class OnnxBaseModel:
    """Calls an exported base model the way ``special_states`` calls the torch one."""

    def __init__(self, path: Path, base: nn.Module, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self.dtype = base.dtype
        layers, kv_heads, head_dim = _kv_shape(base.config)
        self._empty = torch.zeros(layers, 1, kv_heads, 0, head_dim, dtype=base.dtype).numpy()
        self._past: tuple[int, object, object] | None = None  # (id of the first key tensor, keys, values)

    def _stacked(self, cache):
        if cache is None:
            return self._empty, self._empty
        first = cache.layers[0].keys
        if self._past is None or self._past[0] != (first.data_ptr(), tuple(first.shape[2:])):
            keys = torch.stack([layer.keys[:1] for layer in cache.layers]).contiguous().numpy()
            values = torch.stack([layer.values[:1] for layer in cache.layers]).contiguous().numpy()
            self._past = ((first.data_ptr(), tuple(first.shape[2:])), keys, values)
        return self._past[1], self._past[2]

    def __call__(self, inputs_embeds, attention_mask=None, position_ids=None, past_key_values=None, **_) -> BaseModelOutputWithPast:
        batch, rows = inputs_embeds.shape[:2]
        keys, values = self._stacked(past_key_values)
        if attention_mask is None:
            attention_mask = torch.ones(batch, rows, dtype=torch.long)
        if position_ids is None:
            position_ids = (attention_mask[:, -rows:].cumsum(1) - 1).clamp(min=0) + keys.shape[3]
        feed = {
            "inputs_embeds": inputs_embeds.detach().to(self.dtype).contiguous().numpy(),
            "attention_mask": attention_mask[:, -rows:].to(torch.long).contiguous().numpy(),
            "position_ids": position_ids.to(torch.long).contiguous().numpy(),
            "past_keys": keys,
            "past_values": values,
        }
        (hidden,) = self.session.run(None, feed)
        return BaseModelOutputWithPast(last_hidden_state=torch.from_numpy(hidden))
