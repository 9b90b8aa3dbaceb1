"""Who is asking: the App Bridge session token on every page and API call, and CSRF for forms.

The shop comes only from a verified token (its `dest` claim), never from a query parameter, so a
token for shop A can only ever reach shop A's rows. Where a token travels:

- JSON API: `Authorization: Bearer <token>` only (App Bridge adds it to `fetch` calls).
- Page loads: the `id_token` query parameter, as Shopify puts it on the embedded app's first load;
  `admin.js` adds a fresh one to every link it follows (tokens live one minute).
- Form posts: an `id_token` field that `admin.js` fills in at submit time, plus a CSRF field.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from starlette.requests import Request

from plugin.i18n import Lang, language_of
from plugin.ledger import load_shop
from plugin.models import Shop
from plugin.runtime import Runtime
from plugin.shopify.session_token import InvalidSessionToken, SessionClaims, verify_session_token
from plugin.shopify.shop_domain import valid_shop_domain
from plugin.shopify.tokens import exchange_session_token

log = logging.getLogger("gallra.admin")

CSRF_FIELD = "csrf"
TOKEN_FIELD = "id_token"  # noqa: S105 (a field name, not a secret)
# A form rendered this long ago can still be submitted; the session token inside the post is
# checked separately and lives one minute.
CSRF_LIFETIME = 4 * 3600


class NotAuthenticated(Exception):
    """No token, or a token that failed verification. `expired` tells pages to fetch a new one."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


class CsrfRejected(Exception):
    """A form post without a valid CSRF field, or from another site."""


@dataclass(frozen=True)
class AdminContext:
    """The verified caller: everything a handler may use to scope its queries."""

    runtime: Runtime
    claims: SessionClaims
    shop: Shop | None  # None until the shop's row exists (managed install, first open)
    lang: Lang

    @property
    def shop_domain(self) -> str:
        return self.claims.shop


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def verify(token: str | None, runtime: Runtime) -> SessionClaims:
    if not token:
        raise NotAuthenticated("no session token")
    try:
        return verify_session_token(token, runtime.settings)
    except InvalidSessionToken as exc:
        # The message names the failed check only (never the token); expired ones are renewed.
        raise NotAuthenticated(str(exc), expired="Expired" in str(exc)) from None


async def load_context(request: Request, claims: SessionClaims) -> AdminContext:
    runtime = runtime_of(request)
    async with runtime.db.session() as session:
        shop = await load_shop(session, claims.shop)
    if shop is None or not shop.access_token_enc:
        shop = await _first_open(runtime, claims, request) or shop
    # The shop's language (`plugin.i18n.shop_language`); the admin user's locale from Shopify's
    # query string stands in for a shop whose own locale is not known yet.
    locale = shop.locale if shop is not None and shop.locale else request.query_params.get("locale")
    return AdminContext(
        runtime=runtime, claims=claims, shop=shop, lang=language_of(locale, shop.country if shop else None)
    )


async def _first_open(runtime: Runtime, claims: SessionClaims, request: Request) -> Shop | None:
    """Managed install: the first time a shop opens the app it has no offline token yet; exchange
    the session token for one (the Shopify stage owns the exchange and the shop row)."""
    if runtime.settings.dev:
        return None  # no Shopify to exchange with in development
    token = bearer_token(request) or request.query_params.get(TOKEN_FIELD)
    if not token:
        form = await request.form()
        value = form.get(TOKEN_FIELD)
        token = value if isinstance(value, str) else None
    if not token:
        return None
    try:
        await exchange_session_token(runtime, claims, token)
    except Exception as exc:  # the page still renders; the class name says what failed
        log.warning("token exchange failed for a shop: %s", type(exc).__name__)
        return None
    async with runtime.db.session() as session:
        return await load_shop(session, claims.shop)


async def authenticate_api(request: Request) -> AdminContext:
    return await load_context(request, verify(bearer_token(request), runtime_of(request)))


async def authenticate_page(request: Request) -> AdminContext:
    token = bearer_token(request) or request.query_params.get(TOKEN_FIELD)
    return await load_context(request, verify(token, runtime_of(request)))


async def authenticate_form(request: Request) -> AdminContext:
    """A form post: same-origin, a session token in the body, and a CSRF field bound to the shop."""
    check_same_origin(request)
    form = await request.form()
    token = form.get(TOKEN_FIELD)
    claims = verify(token if isinstance(token, str) else bearer_token(request), runtime_of(request))
    csrf = form.get(CSRF_FIELD)
    if not isinstance(csrf, str) or not check_csrf(runtime_of(request), claims, csrf):
        raise CsrfRejected("missing or invalid CSRF field")
    return await load_context(request, claims)


def check_same_origin(request: Request) -> None:
    """Browsers say where a post comes from; anything but our own origin is refused."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRejected("cross-site post")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != own:
            raise CsrfRejected("post from another origin")


def _csrf_key(runtime: Runtime) -> bytes:
    secret = runtime.settings.shopify_api_secret.get_secret_value().encode()
    return hmac.new(secret, b"gallra admin csrf v1", hashlib.sha256).digest()


def make_csrf(runtime: Runtime, claims: SessionClaims, *, now: float | None = None) -> str:
    """`<issued>.<hmac(shop|user|issued)>`: bound to one shop and one admin user."""
    issued = str(int(now if now is not None else time.time()))
    mac = hmac.new(_csrf_key(runtime), f"{claims.shop}|{claims.sub}|{issued}".encode(), hashlib.sha256)
    return f"{issued}.{mac.hexdigest()}"


def check_csrf(runtime: Runtime, claims: SessionClaims, value: str, *, now: float | None = None) -> bool:
    issued, _, mac = value.partition(".")
    if not issued.isdigit() or not mac:
        return False
    current = now if now is not None else time.time()
    if not (current - CSRF_LIFETIME <= int(issued) <= current + 60):
        return False
    expected = hmac.new(
        _csrf_key(runtime), f"{claims.shop}|{claims.sub}|{issued}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, mac)


def shop_hint(request: Request) -> str | None:
    """The `shop` query parameter, only to name the frame ancestor of a page that holds no data."""
    shop = request.query_params.get("shop")
    return shop if valid_shop_domain(shop) else None
