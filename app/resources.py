"""Long-lived objects, created once per app process (``st.cache_resource``): the store client and the encoders.

The embedded Qdrant store admits one client per folder, so the whole app shares one; LLM2Vec-Gen
encoders share one frozen backbone (``encoder.backbone.load_backbone`` is cached too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st
from qdrant_client import QdrantClient

from encoder import Encoder, Settings, get_settings

if TYPE_CHECKING:
    from indexer.search import Collection


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
def encoder(model: str, adapter: str | None = None) -> Encoder:
    """An encoder by ``load_encoder`` name (a mode, backbone or sentence-encoder registry name) and optional adapter
    folder, loaded once."""
    from encoder import load_encoder

    return load_encoder(model, adapter=adapter, settings=settings())


def open_collection(name: str) -> Collection:
    """``name`` opened for searching (one Qdrant call) with its encoder, loaded once per process; StoreError if
    it does not exist. Opened per search, so a collection rebuilt meanwhile is read as it is now."""
    from indexer.identity import loadable_adapter
    from indexer.search import Collection

    return Collection.open(client(), name, load=lambda identity: encoder(identity.load_name, loadable_adapter(identity)))


@st.cache_data(ttl=15, show_spinner=False)
def _names(location: str) -> list[str]:
    from .services import collection_names

    return collection_names(client())


def collection_names() -> list[str]:
    """The store's collections for the sidebar picker, listed at most every 15 s (not on every search)."""
    from .services import store_location

    return _names(store_location(settings()))
