"""Per-shop access tokens: obtaining them (token exchange, authorization code), storing them encrypted,
and refreshing expiring offline tokens before they lapse.

Expiring offline tokens live 60 minutes and come with a rotating refresh token (shopify-platform.md
§3.4). A refresh spends the refresh token, so two workers refreshing at once would race; instead the
first one locks the shop's row (PostgreSQL: the no-op UPDATE takes a row lock; SQLite: it takes the
single writer lock) and refreshes, and the others wait on that lock, re-read the row and reuse the
new token. An in-process lock keeps coroutines of one process from even queueing on the database.
If our commit fails after Shopify issued a new pair, the old refresh token still works until the new
one is first used (Shopify changelog 2026-08-28), so the next attempt recovers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from adapters.errors import AdapterError
from adapters.http import ProviderHttp
from plugin import controller
from plugin.ledger import load_shop
from plugin.models import Shop, shop_cell
from plugin.runtime import Runtime
from plugin.shopify.client import AdminClient, ShopifyError
from plugin.shopify.operations import fetch_shop
from plugin.shopify.records import ShopRecord
from plugin.shopify.session_token import SessionClaims
from plugin.states import ShopStatus

log = logging.getLogger("gallra.shopify.tokens")

# Refresh this long before expiry, so a call started just before never carries a dead token.
REFRESH_MARGIN = timedelta(minutes=5)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a grant type name
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105
OAUTH_ADAPTER = "shopify-oauth"


class ShopNotInstalled(Exception):
    """No usable token for the shop: not installed, uninstalled, or the refresh token is gone. The
    merchant opening the app (token exchange) or reinstalling fixes it."""


class TokenRequestFailed(Exception):
    """Shopify's token endpoint refused the request (invalid session token, code or client)."""

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error = status, error


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    scope: str | None
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None

    @classmethod
    def from_response(cls, body: dict[str, Any], now: datetime) -> TokenGrant:
        def after(seconds: Any) -> datetime | None:
            return now + timedelta(seconds=int(seconds)) if seconds else None

        return cls(
            access_token=str(body["access_token"]),
            scope=body.get("scope"),
            expires_at=after(body.get("expires_in")),
            refresh_token=body.get("refresh_token"),
            refresh_token_expires_at=after(body.get("refresh_token_expires_in")),
        )


def token_url(runtime: Runtime, shop_domain: str) -> str:
    base = runtime.settings.shopify_admin_url.replace("{shop}", shop_domain).rstrip("/")
    return f"{base}/admin/oauth/access_token"


async def request_token(runtime: Runtime, shop_domain: str, grant: dict[str, str]) -> TokenGrant:
    """POST to the shop's token endpoint with the client credentials; retries on 429/5xx/network."""
    settings = runtime.settings
    body = {
        "client_id": settings.shopify_api_key,
        "client_secret": settings.shopify_api_secret.get_secret_value(),
        **grant,
    }
    http = ProviderHttp(runtime.http, runtime.limiter, sleep=runtime.clock.sleep)
    try:
        response = await http.request(
            OAUTH_ADAPTER,
            "POST",
            token_url(runtime, shop_domain),
            json=body,
            auth_hint="the app's client credentials",
        )
    except AdapterError as exc:
        # Messages from ProviderHttp carry the path only, never the body with the secret.
        raise TokenRequestFailed(f"{shop_domain}: token request failed: {exc}") from None
    if response.status_code != 200:
        error = _error_code(response)
        raise TokenRequestFailed(
            f"{shop_domain}: token request refused (HTTP {response.status_code} {error or ''})".rstrip(),
            status=response.status_code,
            error=error,
        )
    try:
        return TokenGrant.from_response(response.json(), datetime.now(UTC))
    except (ValueError, KeyError, TypeError):
        raise TokenRequestFailed(f"{shop_domain}: token response without access_token") from None


def _error_code(response: httpx.Response) -> str | None:
    try:
        value = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return str(value)[:64] if value else None


def _store(runtime: Runtime, shop: Shop, grant: TokenGrant) -> None:
    vault = runtime.vault
    shop.access_token_enc = vault.encrypt(grant.access_token, shop_cell("access_token_enc", shop.domain))
    shop.access_token_expires_at = grant.expires_at
    shop.refresh_token_enc = vault.encrypt(grant.refresh_token, shop_cell("refresh_token_enc", shop.domain))
    shop.refresh_token_expires_at = grant.refresh_token_expires_at
    if grant.scope is not None:
        shop.scopes = grant.scope
    shop.status = ShopStatus.ACTIVE
    shop.uninstalled_at = None
    # A new grant proves the shop is installed now: a pending uninstall claim is void.
    shop.uninstall_claimed_at = None


def _usable(shop: Shop | None, now: datetime) -> str | None:
    """The stored access token if it is good for at least REFRESH_MARGIN more."""
    if shop is None or shop.status != ShopStatus.ACTIVE or shop.access_token_enc is None:
        return None
    if shop.access_token_expires_at is not None and shop.access_token_expires_at - REFRESH_MARGIN <= now:
        return None
    return shop.access_token_enc


_locks: dict[tuple[int, str], asyncio.Lock] = {}


def _lock(runtime: Runtime, shop_domain: str) -> asyncio.Lock:
    return _locks.setdefault((id(runtime.db), shop_domain), asyncio.Lock())


async def access_token(runtime: Runtime, shop_domain: str) -> str:
    """A valid access token for the shop, refreshed first when it is about to expire."""
    async with runtime.db.session() as session:
        shop = await load_shop(session, shop_domain)
    token = _usable(shop, datetime.now(UTC))
    if token is not None:
        return runtime.vault.decrypt(token, shop_cell("access_token_enc", shop_domain)) or ""
    if shop is None or shop.status != ShopStatus.ACTIVE or shop.access_token_enc is None:
        raise ShopNotInstalled(f"{shop_domain}: Gallra is not installed or has no access token")
    async with _lock(runtime, shop_domain):
        return await _refresh(runtime, shop_domain)


async def _refresh(runtime: Runtime, shop_domain: str) -> str:
    async with runtime.db.transaction() as session:
        # The no-op write takes the row lock (PostgreSQL) or the writer lock (SQLite) before reading,
        # so a second refresher blocks here until the first has committed its new tokens.
        await session.execute(update(Shop).where(Shop.domain == shop_domain).values(domain=Shop.domain))
        shop = await load_shop(session, shop_domain)
        now = datetime.now(UTC)
        token = _usable(shop, now)
        if token is not None:  # someone refreshed while we waited
            return runtime.vault.decrypt(token, shop_cell("access_token_enc", shop_domain)) or ""
        if shop is None or shop.status != ShopStatus.ACTIVE:
            raise ShopNotInstalled(f"{shop_domain}: Gallra is not installed")
        refresh = runtime.vault.decrypt(shop.refresh_token_enc, shop_cell("refresh_token_enc", shop_domain))
        if not refresh or (
            shop.refresh_token_expires_at is not None and shop.refresh_token_expires_at <= now
        ):
            raise ShopNotInstalled(f"{shop_domain}: the access token expired and cannot be refreshed")
        try:
            grant = await request_token(
                runtime, shop_domain, {"grant_type": "refresh_token", "refresh_token": refresh}
            )
        except TokenRequestFailed as exc:
            if exc.status == 400 or exc.status == 401:
                raise ShopNotInstalled(
                    f"{shop_domain}: Shopify refused the refresh token ({exc.error})"
                ) from None
            raise
        _store(runtime, shop, grant)
        log.info("refreshed the access token of %s", shop_domain)
        return grant.access_token


async def admin_client(runtime: Runtime, shop_domain: str) -> AdminClient:
    """An Admin API client for the shop. The token is looked up (and refreshed) before every call,
    so long jobs survive the 60-minute token lifetime. Raises `ShopNotInstalled` up front."""
    await access_token(runtime, shop_domain)

    async def token() -> str:
        return await access_token(runtime, shop_domain)

    return AdminClient(
        runtime.http,
        runtime.settings,
        shop_domain,
        token,
        throttle=runtime.shopify_throttles.for_shop(shop_domain),
    )


async def exchange_session_token(runtime: Runtime, claims: SessionClaims, session_token: str) -> Shop:
    """Managed install / embedded load: trade the verified session token for an expiring offline
    token, store it, and on first install read the shop's details."""
    grant = await request_token(
        runtime,
        claims.shop,
        {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": session_token.removeprefix("Bearer ").strip(),
            "subject_token_type": ID_TOKEN,
            "requested_token_type": OFFLINE_TOKEN,
            "expiring": "1",
        },
    )
    return await save_grant(runtime, claims.shop, grant)


async def save_grant(runtime: Runtime, shop_domain: str, grant: TokenGrant) -> Shop:
    """Store a new grant (any flow); a shop seen for the first time also gets its details."""
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        reinstall = shop is not None and (
            shop.status != ShopStatus.ACTIVE or shop.uninstall_claimed_at is not None
        )
        if shop is None:
            shop = Shop(domain=shop_domain, installed_at=datetime.now(UTC))
            session.add(shop)
        elif reinstall:
            shop.installed_at = datetime.now(UTC)
        # Details are read on the first install and again on a reinstall (the shop may have moved).
        needs_details = shop.shopify_shop_id is None or reinstall
        _store(runtime, shop, grant)
    if needs_details:
        await _read_details(runtime, shop_domain, grant.access_token)
    async with runtime.db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == shop_domain))).scalar_one()


async def _read_details(runtime: Runtime, shop_domain: str, token: str) -> None:
    client = AdminClient(
        runtime.http,
        runtime.settings,
        shop_domain,
        token,
        throttle=runtime.shopify_throttles.for_shop(shop_domain),
    )
    info = await fetch_shop(client)
    await _save_details(runtime, shop_domain, info)


async def _save_details(
    runtime: Runtime,
    shop_domain: str,
    info: ShopRecord,
    *,
    keep_place: bool = False,
    seen: datetime | None = None,
) -> None:
    """Store what Shopify says about the shop; the controller fields the owner set are kept
    (`plugin.controller`), and so are the country and time zone given to `shop add` (`keep_place`)."""
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == shop_domain))).scalar_one()
        shop.shopify_shop_id = info.id
        controller.apply_platform(
            runtime.vault,
            shop,
            controller.Details(
                name=info.name, legal_name=info.legal_name, address=info.address, contact_email=info.email
            ),
        )
        if not (keep_place and shop.country):
            shop.country = info.country
        if not (keep_place and shop.timezone):
            shop.timezone = info.timezone
        shop.currency = info.currency
        shop.plan = info.plan
        # Only the claim this reading answers: a `shop/update` that arrived meanwhile stays due.
        if seen is not None and shop.details_stale_at is not None and shop.details_stale_at <= seen:
            shop.details_stale_at = None


async def refresh_details(runtime: Runtime, shop_domain: str) -> None:
    """Read the shop's details again (after a `shop/update`). Raises `ShopNotInstalled` when Gallra
    has no usable token, and the client's errors when Shopify cannot be reached."""
    async with runtime.db.session() as session:
        seen = (
            await session.execute(select(Shop.details_stale_at).where(Shop.domain == shop_domain))
        ).scalar_one_or_none()
    info = await fetch_shop(await admin_client(runtime, shop_domain))
    await _save_details(runtime, shop_domain, info, keep_place=True, seen=seen or datetime.now(UTC))


async def register_shop(
    runtime: Runtime,
    shop_domain: str,
    token: str,
    *,
    country: str | None = None,
    timezone: str | None = None,
    controller_details: controller.Details | None = None,
    read_details: bool = True,
) -> Shop:
    """`gallra shop add`: a shop with a given (non-expiring) token, without any install flow. The
    shop's details are read from Shopify with that token (as an install does); `controller_details`
    are the owner's own values, kept over what Shopify says now and later."""
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None:
            shop = Shop(domain=shop_domain, installed_at=datetime.now(UTC))
            session.add(shop)
        _store(runtime, shop, TokenGrant(token, None, None, None, None))
        if country:
            shop.country = country.upper()
        if timezone:
            shop.timezone = timezone
        if controller_details is not None:
            controller.set_overrides(runtime.vault, shop, controller_details)
    if read_details:
        try:
            await _read_details(runtime, shop_domain, token)
        except ShopifyError as exc:
            # The token is stored all the same: the caller says the details are missing
            # (`shopify_shop_id` unset) and the owner can set them or run this again.
            log.warning("could not read the details of %s: %s", shop_domain, type(exc).__name__)
    async with runtime.db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == shop_domain))).scalar_one()
