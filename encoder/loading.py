"""``load_encoder``: one entry point for every encoder gensearch uses."""

from __future__ import annotations

import logging
from pathlib import Path

from .adapter import AdapterError, default_adapter_path, is_adapter_folder, read_adapter_config
from .asymmetric import FUSE, AsymmetricEncoder
from .backbone import load_backbone
from .base import Encoder
from .device import resolve_device, resolve_dtype
from .fetch import ensure_model
from .llm2vec_gen import LLM2VecGenEncoder
from .registry import get_spec, resolve_name
from .sentence import SentenceEncoder
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

_LLM2VEC_NAMES = {None, "", "default", "llm2vec-gen"}


def load_encoder(
    name: str | None = None,
    *,
    adapter: str | Path | None = None,
    settings: Settings | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> Encoder:
    """Load an encoder by name.

    - ``None`` / ``"llm2vec-gen"``: LLM2Vec-Gen on ``settings.backbone`` with ``settings.adapter`` or the
      shipped adapter for that backbone (a fresh, untrained adapter with a warning if there is none);
    - ``"teacher"`` / ``"baseline"`` or a sentence-encoder registry name: a mean-pooled sentence encoder;
    - a backbone registry name, local HF folder or hub id: LLM2Vec-Gen on that backbone;
    - an adapter folder: LLM2Vec-Gen on the backbone named in its config;
    - ``"llm2vec-gen-fused"`` / ``"llm2vec-gen-asym"``: LLM2Vec-Gen queries (fused with the teacher's, or
      alone) against teacher-embedded documents (``encoder.asymmetric``), on ``settings.backbone`` and
      ``adapter`` as for ``"llm2vec-gen"``.

    A public entry point: ``settings`` defaults to ``get_settings()`` (the environment).
    """
    settings = settings or get_settings()
    torch_device = resolve_device(device or settings.device)
    torch_dtype = resolve_dtype(dtype or settings.dtype, torch_device)

    if name in FUSE:
        generative = load_encoder("llm2vec-gen", adapter=adapter, settings=settings, device=device, dtype=dtype)
        teacher = load_encoder("teacher", settings=settings, device=device, dtype=dtype)
        weight = generative.config.fusion_weight if generative.config.fusion_weight is not None else settings.fusion_weight
        return AsymmetricEncoder(generative, teacher, fuse=FUSE[name], teacher_weight=weight)
    if name in ("teacher", "baseline"):
        name = settings.teacher if name == "teacher" else settings.baseline
    registry_name = resolve_name(name) if name else None
    if registry_name and get_spec(registry_name).role == "sentence-encoder":
        folder = ensure_model(registry_name, settings)
        pack = settings.encode_path == "packed"
        return SentenceEncoder(folder, registry_name, torch_device, dtype=torch_dtype, batch_size=settings.batch_size, pack=pack)

    backbone_ref = settings.backbone
    if name not in _LLM2VEC_NAMES:
        path = Path(str(name)).expanduser()
        if is_adapter_folder(path):
            adapter = path
            backbone_ref = read_adapter_config(path).backbone
        else:
            backbone_ref = str(name)
    backbone = load_backbone(backbone_ref, torch_device, torch_dtype, settings)

    adapter = adapter or settings.adapter or default_adapter_path(backbone.name, settings.adapters_path)
    kwargs = dict(max_length=settings.max_length, batch_size=settings.batch_size)
    if adapter is None:
        log.warning(
            "no trained adapter for backbone %s: using a freshly initialised (untrained) one; "
            "embeddings are not meaningful until you train (`gensearch train all`) or pass an adapter",
            backbone.name,
        )
        return _with_encode_path(LLM2VecGenEncoder.fresh(backbone, teacher=settings.teacher, **kwargs), settings)
    if not Path(adapter).is_dir():
        raise AdapterError(f"adapter folder {adapter} does not exist")
    return _with_encode_path(LLM2VecGenEncoder.load(adapter, backbone, **kwargs), settings)


def _with_encode_path(encoder: LLM2VecGenEncoder, settings: Settings) -> LLM2VecGenEncoder:
    """Apply ``settings.encode_path`` (``encoder.encode_paths``); eager needs nothing."""
    if settings.encode_path != "eager":
        from .encode_paths import default_onnx_dir, install_path

        if install_path(encoder, settings.encode_path, onnx_dir=default_onnx_dir(encoder, settings.cache_dir)) is not None:
            log.info("encode path %s for %s", settings.encode_path, encoder.backbone.name)
    return encoder
