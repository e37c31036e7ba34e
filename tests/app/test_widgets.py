"""Who the app thinks is signed in: only a configured proxy header, sent exactly once, names a user."""

from __future__ import annotations

import pytest

from app.widgets import user_from_header
from encoder.settings import Settings
from indexer.permissions import PermissionsError


def test_no_header_is_trusted_unless_one_is_configured(monkeypatch):
    monkeypatch.delenv("GENSEARCH_APP_USER_HEADER", raising=False)
    assert Settings(_env_file=None).app_user_header is None


def test_the_header_names_one_user_or_nobody():
    assert user_from_header(["alice"], "X-Forwarded-User") == "alice"
    assert user_from_header([" alice "], "X-Forwarded-User") == "alice"
    assert user_from_header([], "X-Forwarded-User") is None
    assert user_from_header(["  "], "X-Forwarded-User") is None


def test_a_header_sent_twice_is_refused_not_guessed_at():
    with pytest.raises(PermissionsError, match="came 2 times"):
        user_from_header(["alice", "mallory"], "X-Forwarded-User")
