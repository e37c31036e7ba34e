"""Client paths: the official `openai` package pointed at our server, and a sentence-encoder server."""

from __future__ import annotations

import httpx
import numpy as np
import openai
import pytest

from encoder import load_encoder

from .helpers import cosines, serve

TEXTS = ["How do I read a file line by line?", "Summer holidays in the Alps"]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0, timeout=120)


def test_openai_client_embeddings_match_encode(client, encoder):
    # The client asks for base64 by default and decodes it itself: this checks our byte layout too.
    result = client.embeddings.create(model=encoder.name, input=TEXTS)
    served = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert cosines(served, encoder.encode(TEXTS, task="query")).min() >= 0.999
    assert result.usage.prompt_tokens == sum(len(ids) for ids in encoder.tokenize(TEXTS, "query"))
    floats = client.embeddings.create(model=encoder.name, input=TEXTS[0], encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, served[0], atol=1e-6)


def test_openai_client_task_via_extra_body(client, encoder):
    result = client.embeddings.create(model=encoder.name, input=TEXTS, extra_body={"task": "document"})
    served = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert cosines(served, encoder.encode(TEXTS, task="document")).min() >= 0.999


def test_openai_client_sees_our_errors(client, encoder):
    with pytest.raises(openai.BadRequestError, match="input is empty"):
        client.embeddings.create(model=encoder.name, input=[])
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert [m.id for m in client.models.list()] == [encoder.name]


def test_sentence_encoder_server_embeds_and_refuses_decode():
    baseline = load_encoder("baseline")
    with serve(baseline) as server:
        body = httpx.post(f"{server.url}/v1/embeddings", json={"input": TEXTS, "model": baseline.name}, timeout=120).json()
        served = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
        assert served.shape == (2, baseline.dim)
        assert cosines(served, baseline.encode(TEXTS)).min() >= 0.999
        for path in ("/v1/decode", "/v1/logit-lens"):
            response = httpx.post(f"{server.url}{path}", json={"input": "hi"})
            assert response.status_code == 400 and "needs an LLM2Vec-Gen encoder" in response.json()["error"]["message"]
