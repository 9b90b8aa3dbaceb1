"""Shopify's webhook signature: base64 HMAC-SHA256 of the raw body, keyed with the app secret.

Verified over the exact bytes received, before anything parses them: re-serialised JSON does not
reproduce Shopify's escaping, so a parse-then-sign check fails on real deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, signature: str | None, secrets: Iterable[str]) -> bool:
    """True if `signature` matches the body under any of the secrets (current, then previous).

    Every secret is compared in constant time, and all of them are tried, so the answer's timing
    does not say which secret matched.
    """
    if not signature:
        return False
    given = signature.strip().encode()
    matched = False
    for secret in secrets:
        if secret and hmac.compare_digest(sign(body, secret).encode(), given):
            matched = True
    return matched
