"""Long-lived objects, created once per app process (``st.cache_resource``): the store client and the encoders.

The embedded Qdrant store admits one client per folder, so the whole app shares one; LLM2Vec-Gen
encoders share one frozen backbone (``encoder.backbone.load_backbone`` is cached too).
"""

from __future__ import annotations

import streamlit as st
from qdrant_client import QdrantClient

from encoder import Encoder, Settings, get_settings


def settings() -> Settings:
    """The app's settings: the one place the app reads the environment (``get_settings``, read once per process)."""
    return get_settings()


@st.cache_resource(show_spinner="Opening the vector store…")
def _client(location: str) -> QdrantClient:
    from indexer.store import open_client

    return open_client(settings())


def client() -> QdrantClient:
    """The app's Qdrant client (one per store location, per process)."""
    from .services import store_location

    return _client(store_location(settings()))


@st.cache_resource(show_spinner="Loading the model (once per app process; the first time takes a while)…")
def encoder(model: str) -> Encoder:
    """An encoder by ``load_encoder`` name (a mode, backbone or sentence-encoder registry name), loaded once."""
    from encoder import load_encoder

    return load_encoder(model, settings=settings())


def encoder_for(collection: str) -> Encoder:
    """The encoder a collection was built with (read from the collection's metadata)."""
    from indexer.store import collection_identity

    return encoder(collection_identity(client(), collection).load_name)
