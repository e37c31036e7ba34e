"""Which encoder made a vector: name, model and adapter digest, so collections never mix encoders.

In the asym / fused modes the stored vectors are the teacher's: ``model`` names the teacher and there is
no adapter digest (any adapter aligned to that teacher may embed the queries)."""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

from encoder import Encoder, LLM2VecGenEncoder, load_encoder
from encoder.adapter import default_adapter_path
from encoder.asymmetric import FUSE, AsymmetricEncoder
from encoder.settings import Settings


@dataclass(frozen=True)
class EncoderIdentity:
    """``encoder`` (e.g. llm2vec-gen, all-minilm-l6-v2), ``model`` (its backbone / weights),
    ``adapter`` (sha256 prefix of the LLM2Vec-Gen adapter tensors, None otherwise) and ``dim``.

    ``adapter_path``: the folder the LLM2Vec-Gen adapter was loaded from when it is not the one installed for its
    backbone (``--encoder path/to/adapter``), so the collection reopens with it; not part of what must match."""

    encoder: str
    model: str
    adapter: str | None
    dim: int
    adapter_path: str | None = field(default=None, compare=False)

    @property
    def load_name(self) -> str:
        """The ``load_encoder`` name that embeds queries for this collection."""
        return self.encoder if self.encoder in FUSE else self.model

    @property
    def label(self) -> str:
        adapter = f", adapter {self.adapter}" if self.adapter else ""
        return f"{self.encoder} ({self.model}{adapter}, dim {self.dim})"

    def to_dict(self) -> dict:
        out = asdict(self)
        if out["adapter_path"] is None:
            del out["adapter_path"]
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> EncoderIdentity:
        return cls(raw["encoder"], raw["model"], raw.get("adapter"), int(raw["dim"]), raw.get("adapter_path"))


_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # encoder -> (tensor versions, digest)


def adapter_digest(encoder: LLM2VecGenEncoder) -> str:
    """First 16 hex digits of the SHA-256 over the adapter's tensors (names, shapes and values). Hashed once per
    encoder and kept until a tensor changes (its storage or in-place version): every search checks identities."""
    tensors = sorted(encoder.model.adapter_state_dict().items())
    versions = tuple((name, t.data_ptr(), t._version) for name, t in tensors)
    cached = _DIGESTS.get(encoder)
    if cached is not None and cached[0] == versions:
        return cached[1]
    sha = hashlib.sha256()
    for name, tensor in tensors:
        sha.update(f"{name}{tuple(tensor.shape)}".encode())
        sha.update(tensor.detach().float().cpu().numpy().tobytes())
    digest = sha.hexdigest()[:16]
    _DIGESTS[encoder] = (versions, digest)
    return digest


def adapter_path_of(encoder: LLM2VecGenEncoder, settings: Settings | None) -> str | None:
    """Where ``encoder``'s adapter was loaded from, if that is not the adapter installed for its backbone."""
    source = encoder.source
    if source is None:
        return None
    installed = default_adapter_path(encoder.backbone.name, settings.adapters_path) if settings else None
    return None if installed is not None and Path(installed).resolve() == source.resolve() else str(source.resolve())


def identity_of(encoder: Encoder, settings: Settings | None = None) -> EncoderIdentity:
    """The identity of a loaded encoder (``settings``: to tell an installed adapter from one loaded by path)."""
    if isinstance(encoder, LLM2VecGenEncoder):
        return EncoderIdentity(encoder.name, encoder.backbone.name, adapter_digest(encoder), encoder.dim, adapter_path_of(encoder, settings))
    if isinstance(encoder, AsymmetricEncoder):
        return EncoderIdentity(encoder.name, encoder.teacher.name, None, encoder.dim, adapter_path_of(encoder.generative, settings))
    return EncoderIdentity(encoder.name, encoder.name, None, encoder.dim)


def load_encoder_for(identity: EncoderIdentity, settings: Settings) -> Encoder:
    """Load the encoder a collection was built with (its backbone or sentence model, or its mode), with the adapter
    it was built with when that was loaded from a folder (``adapter_path``), else the installed one."""
    return load_encoder(identity.load_name, adapter=loadable_adapter(identity), settings=settings)


def loadable_adapter(identity: EncoderIdentity) -> str | None:
    """The adapter folder a collection was built with, if it recorded one that still exists (else the installed one is used)."""
    return identity.adapter_path if identity.adapter_path and Path(identity.adapter_path).is_dir() else None
