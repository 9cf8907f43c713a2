"""The token check every handler runs first: Looker's `Authorization: Token token="<secret>"`."""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import Enum

# Looker writes `Token token="..."`; the reference hub also accepts a lower-case scheme.
_HEADER = re.compile(r'^[Tt]oken token="(?P<token>[^"]*)"$')


class AuthResult(Enum):
    OK = "ok"
    MISSING = "missing"  # no usable header: 401
    WRONG = "wrong"  # a well-formed header with another token: 403


def check(header: str | None, expected: str) -> AuthResult:
    """Compare the presented token with `expected` in constant time. `expected` must be non-empty."""
    if not expected:
        raise ValueError("no token configured")  # callers refuse with 500 before this
    # Whitespace around a field value is not part of it (RFC 9110 5.5); servers differ in stripping it.
    match = _HEADER.match((header or "").strip())
    if match is None:
        return AuthResult.MISSING
    presented = match.group("token")
    # Hash both so neither the length nor the content of the secret shows in the timing.
    same = hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
    return AuthResult.OK if same else AuthResult.WRONG
