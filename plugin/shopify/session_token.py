"""App Bridge session tokens (embedded admin): verify the JWT Shopify's admin hands the app.

shopifyapi's decoder checks the HS256 signature, `aud`, leeway and that `iss`/`dest` share one
`*.myshopify.com` host, but PyJWT only checks `exp` when present and the decoder does not require
it, so a token without `exp` would never expire. We add `exp` and `nbf` to the required claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import jwt
from shopify import session_token as shopify_session_token

from plugin.settings import Settings
from plugin.shopify.shop_domain import valid_shop_domain

REQUIRED_CLAIMS = ("exp", "nbf", "iss", "dest", "aud", "sub", "sid")
LEEWAY_SECONDS = shopify_session_token.LEEWAY_SECONDS


class InvalidSessionToken(Exception):
    """The session token is forged, expired, or not for this app. The message never holds the token."""


@dataclass(frozen=True)
class SessionClaims:
    shop: str  # the `*.myshopify.com` domain from `dest`
    sub: str  # Shopify user id
    sid: str
    exp: int
    raw: dict[str, Any] = field(repr=False)


def verify_session_token(token: str, settings: Settings, *, now: float | None = None) -> SessionClaims:
    token = token.removeprefix("Bearer ").strip()
    secret = settings.shopify_api_secret.get_secret_value()
    try:
        if now is None:
            # shopifyapi's own decoder first (signature, aud, iss/dest host match) ...
            shopify_session_token.decode_from_header(f"Bearer {token}", settings.shopify_api_key, secret)
        # ... then the claims it does not require. PyJWT has no "now" argument, so a fixed clock
        # (tests) checks exp/nbf by hand with the same leeway.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=settings.shopify_api_key,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": now is None, "verify_nbf": now is None},
        )
    except shopify_session_token.SessionTokenError as exc:
        raise InvalidSessionToken(f"session token rejected: {_reason(exc)}") from None
    except jwt.PyJWTError as exc:
        raise InvalidSessionToken(f"session token rejected: {type(exc).__name__}") from None
    if now is not None:
        if int(claims["exp"]) < now - LEEWAY_SECONDS:
            raise InvalidSessionToken("session token rejected: ExpiredSignatureError")
        if int(claims["nbf"]) > now + LEEWAY_SECONDS:
            raise InvalidSessionToken("session token rejected: ImmatureSignatureError")
    issuer = urlparse(str(claims["iss"])).hostname or ""
    dest = urlparse(str(claims["dest"])).hostname or ""
    if issuer != dest or not valid_shop_domain(dest):
        raise InvalidSessionToken("session token rejected: issuer and destination are not one shop")
    return SessionClaims(
        shop=dest, sub=str(claims["sub"]), sid=str(claims["sid"]), exp=int(claims["exp"]), raw=claims
    )


def _reason(exc: Exception) -> str:
    # The wrapped PyJWT error's class name says what failed without echoing any claim values.
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__
