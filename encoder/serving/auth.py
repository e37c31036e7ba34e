"""API keys for `gensearch serve`: ``Authorization: Bearer <key>`` on every route but ``/health``.

Keys come from ``Settings.serve_api_keys`` (``GENSEARCH_SERVE_API_KEYS``, comma-separated) as
``SecretStr``, so they never appear in logs or reprs. A presented key is compared with every configured
key in constant time, no early exit: both sides are SHA-256 digests first (``hmac.compare_digest`` on
strings of unequal length returns early, which would tell a caller each key's length), so timing says
nothing about which key, how much of it, or how long a key matched. With no key configured the server is open, and binds to loopback by default.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr

EXEMPT_PATHS = frozenset({"/health"})  # liveness probes carry no credentials


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def key_matches(presented: str, keys: Sequence[SecretStr]) -> bool:
    """Whether ``presented`` equals one of ``keys``, comparing against all of them in constant time."""
    given = _digest(presented)
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, _digest(key.get_secret_value()))
    return matched


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def unauthorized_reason(path: str, authorization: str | None, keys: Sequence[SecretStr]) -> str | None:
    """Why a request to ``path`` is refused (None: let it through)."""
    if not keys or path in EXEMPT_PATHS:
        return None
    token = bearer_token(authorization)
    if token is None:
        return "missing API key: send the header 'Authorization: Bearer <key>' (keys: GENSEARCH_SERVE_API_KEYS)"
    if not key_matches(token, keys):
        return "invalid API key"
    return None
