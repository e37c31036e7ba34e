"""Which encoder made a vector: name, model and adapter digest, so collections never mix encoders.

In the asym / fused modes the stored vectors are the teacher's: ``model`` names the teacher and there is
no adapter digest (any adapter aligned to that teacher may embed the queries)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from encoder import Encoder, LLM2VecGenEncoder, load_encoder
from encoder.asymmetric import FUSE, AsymmetricEncoder
from encoder.settings import Settings


@dataclass(frozen=True)
class EncoderIdentity:
    """``encoder`` (e.g. llm2vec-gen, all-minilm-l6-v2), ``model`` (its backbone / weights),
    ``adapter`` (sha256 prefix of the LLM2Vec-Gen adapter tensors, None otherwise) and ``dim``."""

    encoder: str
    model: str
    adapter: str | None
    dim: int

    @property
    def load_name(self) -> str:
        """The ``load_encoder`` name that embeds queries for this collection."""
        return self.encoder if self.encoder in FUSE else self.model

    @property
    def label(self) -> str:
        adapter = f", adapter {self.adapter}" if self.adapter else ""
        return f"{self.encoder} ({self.model}{adapter}, dim {self.dim})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> EncoderIdentity:
        return cls(raw["encoder"], raw["model"], raw.get("adapter"), int(raw["dim"]))


def adapter_digest(encoder: LLM2VecGenEncoder) -> str:
    """First 16 hex digits of the SHA-256 over the adapter's tensors (names, shapes and values)."""
    sha = hashlib.sha256()
    for name, tensor in sorted(encoder.model.adapter_state_dict().items()):
        sha.update(f"{name}{tuple(tensor.shape)}".encode())
        sha.update(tensor.detach().float().cpu().numpy().tobytes())
    return sha.hexdigest()[:16]


def identity_of(encoder: Encoder) -> EncoderIdentity:
    """The identity of a loaded encoder."""
    if isinstance(encoder, LLM2VecGenEncoder):
        return EncoderIdentity(encoder.name, encoder.backbone.name, adapter_digest(encoder), encoder.dim)
    if isinstance(encoder, AsymmetricEncoder):
        return EncoderIdentity(encoder.name, encoder.teacher.name, None, encoder.dim)
    return EncoderIdentity(encoder.name, encoder.name, None, encoder.dim)


def load_encoder_for(identity: EncoderIdentity, settings: Settings) -> Encoder:
    """Load the encoder a collection was built with (its backbone or sentence model, or its mode; default adapter)."""
    return load_encoder(identity.load_name, settings=settings)
