"""The access log of `gensearch serve` never shows query strings (a client may put an API key there)."""

import logging

from encoder.serving.server import RedactQueryStrings


def test_query_strings_are_cut_from_access_log_lines():
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("1.2.3.4:5", "GET", "/v1/models?api_key=secret", "1.1", 200), None)
    assert RedactQueryStrings().filter(record)
    assert "secret" not in record.getMessage() and "/v1/models?[redacted]" in record.getMessage()
    plain = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("1.2.3.4:5", "GET", "/health", "1.1", 200), None)
    assert RedactQueryStrings().filter(plain) and "/health" in plain.getMessage()
