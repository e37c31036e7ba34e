"""API keys: every route but /health needs a valid Bearer key, refusals are 401 in OpenAI's error shape,
keys come from GENSEARCH_SERVE_API_KEYS and never show in the settings' repr."""

import httpx
import pytest
from pydantic import SecretStr

from encoder.serving.auth import bearer_token, key_matches, unauthorized_reason
from encoder.serving.cli import is_loopback
from encoder.settings import Settings

from .helpers import serve

KEYS = [SecretStr("k-alpha-123"), SecretStr("k-beta-456")]


def test_keys_are_read_comma_separated_from_the_environment_and_stay_secret(monkeypatch):
    monkeypatch.setenv("GENSEARCH_SERVE_API_KEYS", " k-alpha-123, k-beta-456 ,")
    settings = Settings()
    assert [k.get_secret_value() for k in settings.serve_api_keys] == ["k-alpha-123", "k-beta-456"]
    assert "k-alpha-123" not in repr(settings) and "k-alpha-123" not in str(settings.model_dump())


@pytest.mark.parametrize("value", [",", " , ,"])
def test_separators_without_a_key_are_an_error_not_an_open_server(monkeypatch, value):
    monkeypatch.setenv("GENSEARCH_SERVE_API_KEYS", value)
    with pytest.raises(ValueError, match="no key"):
        Settings(_env_file=None)


def test_no_keys_configured_means_an_open_server(monkeypatch):
    monkeypatch.delenv("GENSEARCH_SERVE_API_KEYS", raising=False)
    assert Settings(_env_file=None).serve_api_keys == []
    assert unauthorized_reason("/v1/embeddings", None, []) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer k1", "k1"), ("bearer   k1 ", "k1"), ("Basic k1", None), ("Bearer", None), ("", None), (None, None)],
)
def test_bearer_token_parsing(header, token):
    assert bearer_token(header) == token


def test_key_matching_is_exact():
    assert key_matches("k-beta-456", KEYS)
    assert not key_matches("k-beta-45", KEYS) and not key_matches("k-beta-4567", KEYS) and not key_matches("", KEYS)


def test_only_health_is_exempt():
    assert unauthorized_reason("/health", None, KEYS) is None
    for path in ("/v1/embeddings", "/v1/models", "/docs", "/openapi.json"):
        assert unauthorized_reason(path, None, KEYS).startswith("missing API key")
        assert unauthorized_reason(path, "Bearer nope", KEYS) == "invalid API key"
        assert unauthorized_reason(path, "Bearer k-alpha-123", KEYS) is None


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False), ("myhost", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_a_live_server_with_keys_answers_401_without_a_valid_key(encoder):
    with serve(encoder, api_keys=KEYS) as server:
        body = {"input": ["how do I sort a list?"]}
        missing = httpx.post(f"{server.url}/v1/embeddings", json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        error = missing.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key" and "Authorization: Bearer" in error["message"]
        wrong = httpx.post(f"{server.url}/v1/embeddings", json=body, headers={"Authorization": "Bearer k-alpha-12"})
        assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid API key"
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        assert httpx.get(f"{server.url}/health").status_code == 200, "liveness probes need no key"
        ok = httpx.post(f"{server.url}/v1/embeddings", json=body, headers={"Authorization": "Bearer k-beta-456"})
        assert ok.status_code == 200 and len(ok.json()["data"][0]["embedding"]) == encoder.dim


def test_the_openai_client_authenticates_with_its_api_key(encoder):
    openai = pytest.importorskip("openai")
    with serve(encoder, api_keys=KEYS) as server:
        good = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k-alpha-123")
        assert len(good.embeddings.create(input=["read a file"], model=encoder.name).data[0].embedding) == encoder.dim
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong").embeddings.create(input=["read a file"], model=encoder.name)
