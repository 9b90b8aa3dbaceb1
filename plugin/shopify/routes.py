"""Install routes.

- `GET /auth/install?shop=…` starts the authorization-code flow (non-embedded installs): the
  merchant is sent to Shopify's grant screen with a state that carries its own nonce, shop and
  expiry under an HMAC, so this unauthenticated route writes nothing (a stored state per call let
  anyone fill `oauth_states`: 2,800 rows in 5 s). When Shopify itself opens the URL (`hmac` and
  `timestamp` present) those are verified too.
- `GET /auth/callback?code&hmac&shop&state&timestamp` verifies the query HMAC (shopifyapi's helper),
  the timestamp window, the shop-domain pattern and the state (its MAC, its shop, its expiry), then
  records the state's nonce as spent in `oauth_states` (once only: the nonce is the primary key)
  and trades the code for an expiring offline token. Only a callback Shopify signed writes a row,
  and rows older than a state's lifetime are deleted as new ones are written: a spent nonce only
  needs remembering until its state would be refused as expired anyway.
- `POST /auth/token` (Authorization: Bearer <App Bridge session token>) is the managed-install entry
  for the embedded app: verify the session token, exchange it, store the token. The admin pages call
  `exchange_session_token` themselves when a shop without a token opens the app.

Answers: malformed shop → 400; bad HMAC, stale timestamp, unknown or replayed state → 400; forged or
expired session token → 401. Nothing secret (tokens, codes, state, session tokens) is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from shopify import Session as ShopifySession
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from plugin.models import OAuthState
from plugin.runtime import Runtime
from plugin.settings import Settings
from plugin.shopify.app_config import app_config
from plugin.shopify.session_token import InvalidSessionToken, verify_session_token
from plugin.shopify.shop_domain import valid_shop_domain
from plugin.shopify.tokens import TokenRequestFailed, exchange_session_token, request_token, save_grant

log = logging.getLogger("gallra.shopify.install")

# shopify-app-js accepts ±90 s; shopifyapi a whole day. The callback follows the grant at once, so
# the tighter window costs nothing and limits replays.
TIMESTAMP_WINDOW = 90
STATE_LIFETIME = timedelta(minutes=10)
# How long a spent nonce is remembered: its state's lifetime, and a minute for clocks of several
# instances that disagree a little.
SPENT_KEPT = STATE_LIFETIME + timedelta(minutes=1)
CALLBACK_PATH = "/auth/callback"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _bad(reason: str) -> Response:
    return PlainTextResponse(f"Bad request: {reason}", status_code=400)


def query_hmac_valid(params: dict[str, Any], secrets_to_try: list[str]) -> bool:
    """Shopify's query-string HMAC (hex over sorted k=v), checked with shopifyapi's helper. The
    helper reads the secret from a class attribute, so a throwaway subclass per secret keeps the
    global `shopify.Session` untouched."""
    for secret in secrets_to_try:
        checker: Any = type("GallraHmacCheck", (ShopifySession,), {"secret": secret})
        if checker.validate_hmac(params):
            return True
    return False


def timestamp_fresh(value: str | None, now: float | None = None) -> bool:
    try:
        stamp = int(value or "")
    except ValueError:
        return False
    return abs((now if now is not None else time.time()) - stamp) <= TIMESTAMP_WINDOW


def _state_key(settings: Settings) -> bytes:
    # A key of its own: state must never be a valid webhook HMAC (shopify-platform.md §2.1).
    return hashlib.sha256(
        b"gallra oauth state v1\x00" + settings.shopify_api_secret.get_secret_value().encode()
    ).digest()


def _state_mac(settings: Settings, nonce: str, shop: str, expires: str) -> str:
    message = f"{nonce}|{shop}|{expires}".encode()
    return hmac.new(_state_key(settings), message, hashlib.sha256).hexdigest()[:32]


def sign_state(settings: Settings, nonce: str, shop: str, now: float | None = None) -> str:
    """`nonce.expires.mac`: everything the callback needs to check it, nothing stored."""
    expires = str(int((now if now is not None else time.time()) + STATE_LIFETIME.total_seconds()))
    return f"{nonce}.{expires}.{_state_mac(settings, nonce, shop, expires)}"


def _state_nonce(settings: Settings, state: str, shop: str, now: float | None = None) -> str | None:
    """The nonce of a state issued for `shop` by this app and not yet expired."""
    parts = state.split(".")
    if len(parts) != 3:
        return None
    nonce, expires, mac = parts
    if not (nonce and expires.isdigit() and mac):
        return None
    if not hmac.compare_digest(_state_mac(settings, nonce, shop, expires), mac):
        return None
    if int(expires) < (now if now is not None else time.time()):
        return None
    return nonce


def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key.endswith("[]"):
            params.setdefault(key, []).append(value)
        else:
            params[key] = value
    return params


def _shop_base(settings: Settings, shop: str) -> str:
    return settings.shopify_admin_url.replace("{shop}", shop).rstrip("/")


def _shop_request(request: Request) -> tuple[Runtime, dict[str, Any], str | None]:
    """The runtime, the query parameters, and the shop when it is a well-formed domain."""
    params = _params(request)
    shop = params.get("shop")
    return _runtime(request), params, shop if isinstance(shop, str) and valid_shop_domain(shop) else None


async def install(request: Request) -> Response:
    runtime, params, shop = _shop_request(request)
    settings = runtime.settings
    if shop is None:
        return _bad("shop must be a *.myshopify.com domain")
    if "hmac" in params and not (
        query_hmac_valid(params, settings.webhook_secrets()) and timestamp_fresh(params.get("timestamp"))
    ):
        return _bad("the request's signature or timestamp is invalid")
    query = urlencode(
        {
            "client_id": settings.shopify_api_key,
            "scope": ",".join(app_config().scopes),
            "redirect_uri": settings.app_url.rstrip("/") + CALLBACK_PATH,
            "state": sign_state(settings, secrets.token_urlsafe(24), shop),
        }
    )
    return RedirectResponse(f"{_shop_base(settings, shop)}/admin/oauth/authorize?{query}", status_code=302)


async def _spend_state(runtime: Runtime, nonce: str, shop: str) -> bool:
    """Records a verified, unexpired state's nonce as spent; false when it already was."""
    now = datetime.now(UTC)
    try:
        async with runtime.db.transaction() as session:
            # Spent before the cut-off: its state expired by now (STATE_LIFETIME after it was
            # issued, which was before it was spent), so the callback refuses it unrecorded.
            await session.execute(delete(OAuthState).where(OAuthState.created_at < now - SPENT_KEPT))
            session.add(OAuthState(nonce=nonce, shop_domain=shop, created_at=now, used_at=now))
    except IntegrityError:  # the nonce's row is there: a replay
        return False
    return True


async def callback(request: Request) -> Response:
    runtime, params, shop = _shop_request(request)
    settings = runtime.settings
    if shop is None:
        return _bad("shop must be a *.myshopify.com domain")
    if not query_hmac_valid(params, settings.webhook_secrets()):
        return _bad("the request's signature is invalid")
    if not timestamp_fresh(params.get("timestamp")):
        return _bad("the request is too old")
    nonce = _state_nonce(settings, str(params.get("state") or ""), shop)
    if nonce is None or not await _spend_state(runtime, nonce, shop):
        return _bad("unknown, expired or already used state")
    code = params.get("code")
    if not isinstance(code, str) or not code:
        return _bad("code is missing")
    try:
        grant = await request_token(runtime, shop, {"code": code, "expiring": "1"})
    except TokenRequestFailed as exc:
        log.warning("authorization code exchange failed for a shop: HTTP %s %s", exc.status, exc.error)
        return (
            _bad("Shopify refused the authorization code") if exc.status == 400 else Response(status_code=502)
        )
    await save_grant(runtime, shop, grant)
    log.info("installed via authorization code: %s", shop)
    if app_config().embedded:
        return RedirectResponse(
            f"{_shop_base(settings, shop)}/admin/apps/{settings.shopify_api_key}", status_code=302
        )
    return RedirectResponse(settings.app_url.rstrip("/") + "/", status_code=302)


async def token_exchange(request: Request) -> Response:
    """Managed install: App Bridge's session token in, an offline token stored, the shop out."""
    runtime = _runtime(request)
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    try:
        claims = verify_session_token(token, runtime.settings)
    except InvalidSessionToken as exc:
        return JSONResponse({"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        shop = await exchange_session_token(runtime, claims, token)
    except TokenRequestFailed as exc:
        log.warning("token exchange failed for a shop: HTTP %s %s", exc.status, exc.error)
        if exc.status in (400, 401):
            return JSONResponse({"error": "Shopify refused the session token"}, status_code=401)
        return JSONResponse({"error": "Shopify is unavailable, try again"}, status_code=502)
    return JSONResponse({"shop": shop.domain, "status": shop.status, "country": shop.country})


def routes() -> list[BaseRoute]:
    return [
        Route("/auth/install", install, methods=["GET"], name="shopify:install"),
        Route(CALLBACK_PATH, callback, methods=["GET"], name="shopify:callback"),
        Route("/auth/token", token_exchange, methods=["POST"], name="shopify:token"),
    ]
