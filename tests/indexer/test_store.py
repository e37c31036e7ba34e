"""Store connection errors are actionable; collections record their encoder."""

from __future__ import annotations

import pytest
from qdrant_client import models

from indexer.identity import EncoderIdentity, identity_of
from indexer.store import StoreError, collection_identity, connect, ensure_collection, open_client


def test_locked_embedded_store_is_an_actionable_error(settings):
    with connect(settings):
        with pytest.raises(StoreError, match="in use by another client.*GENSEARCH_QDRANT_PATH.*GENSEARCH_QDRANT_URL"):
            open_client(settings)
    with connect(settings):  # released after close
        pass


def test_unreachable_server_is_an_actionable_error(settings):
    down = settings.model_copy(update={"qdrant_url": "http://127.0.0.1:9"})
    with pytest.raises(StoreError, match="cannot reach the Qdrant server at http://127.0.0.1:9.*docker compose up"):
        open_client(down)


def test_collection_records_and_checks_identity(client, baseline_encoder):
    identity = identity_of(baseline_encoder)
    assert ensure_collection(client, "c", identity) is True
    assert ensure_collection(client, "c", identity) is False
    assert collection_identity(client, "c") == identity
    other = EncoderIdentity("llm2vec-gen", "smollm2-135m-instruct", "0123456789abcdef", 768)
    with pytest.raises(StoreError, match="holds vectors of all-minilm-l6-v2"):
        ensure_collection(client, "c", other)
    assert ensure_collection(client, "c", other, recreate=True) is True
    assert collection_identity(client, "c") == other


def test_foreign_collection_is_refused(client, baseline_encoder):
    client.create_collection("foreign", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    with pytest.raises(StoreError, match="not built by gensearch"):
        ensure_collection(client, "foreign", identity_of(baseline_encoder))


def test_identity_distinguishes_adapters(smol_encoder):
    from encoder import LLM2VecGenEncoder

    identity = identity_of(smol_encoder)
    assert identity.adapter and identity.dim == 768 and identity_of(smol_encoder) == identity
    other = LLM2VecGenEncoder.fresh(smol_encoder.backbone, seed=1)  # same backbone, another adapter
    assert identity_of(other).adapter != identity.adapter


def damaged_store(settings, damage) -> None:
    with connect(settings) as client:
        client.create_collection("kb", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
        client.upsert("kb", points=[models.PointStruct(id=1, vector=[1.0, 0.0, 0.0, 0.0])])
    damage(settings.qdrant_path / "collection" / "kb" / "storage.sqlite")


def test_a_truncated_store_is_an_actionable_error_not_a_traceback(settings):
    damaged_store(settings, lambda f: f.write_bytes(f.read_bytes()[:5000]))
    with pytest.raises(StoreError, match="is damaged.*re-index"):
        open_client(settings)


@pytest.mark.parametrize("damage", [lambda f: f.write_bytes(b""), lambda f: f.unlink()], ids=["empty", "missing"])
def test_an_emptied_collection_is_refused_not_searched_as_empty(settings, damage):
    damaged_store(settings, damage)
    with pytest.raises(StoreError, match="collection 'kb' .* has lost its data.*--recreate -c kb"):
        open_client(settings)
