"""Development login: the admin outside Shopify, only when GALLRA_DEV is on.

`gallra admin dev-login SHOP` prints a link holding a ten-minute ticket signed with the app secret.
Opening it sets an HttpOnly, SameSite=Strict cookie for /admin; the page's dev bridge
(`static/dev-bridge.js`, loaded instead of App Bridge) then asks `/admin/dev/session-token` for
session tokens shaped and signed exactly like Shopify's. Every page and API call still verifies
those tokens the production way; only their source differs. With GALLRA_DEV off all three routes
answer 404.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import jwt
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from plugin.admin.headers import secure
from plugin.models import Shop
from plugin.settings import Settings
from plugin.shopify.shop_domain import require_shop_domain, valid_shop_domain
from plugin.states import ShopStatus

COOKIE = "gallra_dev"
TICKET_AUDIENCE = "gallra-dev-login"
COOKIE_AUDIENCE = "gallra-dev-session"
TICKET_LIFETIME = 600
COOKIE_LIFETIME = 8 * 3600
TOKEN_LIFETIME = 60  # as Shopify's: one minute


def _secret(settings: Settings) -> str:
    return settings.shopify_api_secret.get_secret_value()


def login_url(shop: str, settings: Settings, *, now: float | None = None) -> str:
    require_shop_domain(shop)
    issued = int(now if now is not None else time.time())
    ticket = jwt.encode(
        {"shop": shop, "aud": TICKET_AUDIENCE, "exp": issued + TICKET_LIFETIME, "iat": issued},
        _secret(settings),
        algorithm="HS256",
    )
    return f"{settings.app_url.rstrip('/')}/admin/dev-login?{urlencode({'ticket': ticket})}"


def mint_session_token(shop: str, settings: Settings, *, sub: str = "1", sid: str | None = None) -> str:
    """A session token with Shopify's claims, signed with the app secret."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": settings.shopify_api_key,
        "sub": sub,
        "exp": now + TOKEN_LIFETIME,
        "nbf": now - 1,
        "iat": now - 1,
        "jti": str(uuid.uuid4()),
        "sid": sid or secrets.token_hex(16),
    }
    return jwt.encode(claims, _secret(settings), algorithm="HS256")


def _decode(value: str, settings: Settings, audience: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            value, _secret(settings), algorithms=["HS256"], audience=audience, options={"require": ["exp"]}
        )
    except jwt.PyJWTError:
        return None
    return claims if valid_shop_domain(claims.get("shop")) else None


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.runtime.settings
    return settings


async def dev_login(request: Request) -> Response:
    settings = _settings(request)
    if not settings.dev:
        return PlainTextResponse("Not found", status_code=404)
    claims = _decode(request.query_params.get("ticket", ""), settings, TICKET_AUDIENCE)
    if claims is None:
        return secure(PlainTextResponse("This login link is invalid or has expired.", status_code=401), None)
    shop = str(claims["shop"])
    await _ensure_dev_shop(request, shop)
    now = int(time.time())
    session = jwt.encode(
        {"shop": shop, "aud": COOKIE_AUDIENCE, "exp": now + COOKIE_LIFETIME, "sid": secrets.token_hex(16)},
        _secret(settings),
        algorithm="HS256",
    )
    response = RedirectResponse(f"/admin?{urlencode({'shop': shop})}", status_code=303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=COOKIE_LIFETIME,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return secure(response, shop)


async def _ensure_dev_shop(request: Request, shop: str) -> None:
    """Development only: a shop row to hang settings on, as an install would create it."""
    runtime = request.app.state.runtime
    async with runtime.db.transaction() as session:
        found = (await session.execute(select(Shop.id).where(Shop.domain == shop))).first()
        if found is None:
            session.add(Shop(domain=shop, name=shop.split(".")[0], status=ShopStatus.ACTIVE))


async def dev_session_token(request: Request) -> Response:
    settings = _settings(request)
    if not settings.dev:
        return PlainTextResponse("Not found", status_code=404)
    if request.headers.get("sec-fetch-site") not in (None, "same-origin"):
        return JSONResponse({"error": "forbidden"}, status_code=403)
    claims = _decode(request.cookies.get(COOKIE, ""), settings, COOKIE_AUDIENCE)
    if claims is None:
        return JSONResponse({"error": "no dev login; run `gallra admin dev-login SHOP`"}, status_code=401)
    token = mint_session_token(str(claims["shop"]), settings, sid=str(claims.get("sid") or ""))
    return secure(JSONResponse({"token": token}), str(claims["shop"]))
