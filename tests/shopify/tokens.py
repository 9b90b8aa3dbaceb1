"""Test helper: a session token as App Bridge would hand it to the embedded app.

token = make_session_token("shop-a.myshopify.com", settings)            # valid for 60 s
token = make_session_token(shop, settings, exp=time.time() - 120)     # expired
token = make_session_token(shop, settings, exp=None)                  # claim left out
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from plugin.settings import Settings

_MISSING = object()


def make_session_token(shop: str, settings: Settings, *, secret: str | None = None, **overrides: Any) -> str:
    """Claims as Shopify documents them; an override of None removes that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": settings.shopify_api_key,
        "sub": "42",
        "exp": now + 60,
        "nbf": now - 1,
        "iat": now - 1,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
    }
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    key = secret if secret is not None else settings.shopify_api_secret.get_secret_value()
    return jwt.encode(claims, key, algorithm="HS256")
