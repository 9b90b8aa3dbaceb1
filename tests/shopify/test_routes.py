from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from plugin.models import OAuthState, Shop, cell_of
from plugin.runtime import Runtime
from plugin.shopify.routes import STATE_LIFETIME, query_hmac_valid, routes, sign_state
from tests.conftest import TEST_SECRET
from tests.fakes.shopify import ShopifyFake
from tests.shopify.helpers import SHOP
from tests.shopify.tokens import make_session_token


def _signed(params: dict[str, str], secret: str = TEST_SECRET) -> dict[str, str]:
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    application = Starlette(routes=routes())
    application.state.runtime = runtime
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="https://gallra.test") as client:
        yield client


def test_query_hmac_test_vector() -> None:
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
        "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
    }
    assert query_hmac_valid(params, ["hush"])
    assert not query_hmac_valid(params, ["other"])
    assert not query_hmac_valid({**params, "shop": "evil.myshopify.com"}, ["hush"])


async def _install(app: httpx.AsyncClient, **extra: str) -> dict[str, Any]:
    response = await app.get("/auth/install", params={"shop": SHOP, **extra})
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"https://{SHOP}/admin/oauth/authorize"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def test_authorization_code_flow_end_to_end(
    app: httpx.AsyncClient, runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    shopify_fake.add_shop(SHOP, country="DK", timezone="Europe/Copenhagen", token=None)
    grant = await _install(app)
    assert grant["client_id"] == "test-client-id" and "read_all_orders" in grant["scope"].split(",")
    assert grant["redirect_uri"] == "http://127.0.0.1:8000/auth/callback"
    callback = _signed(
        {
            "code": shopify_fake.authorize(SHOP),
            "shop": SHOP,
            "state": grant["state"],
            "timestamp": str(int(time.time())),
        }
    )
    response = await app.get("/auth/callback", params=callback)
    assert response.status_code == 302
    assert response.headers["location"] == f"https://{SHOP}/admin/apps/test-client-id"
    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
    assert shop.country == "DK" and shop.timezone == "Europe/Copenhagen"
    assert shop.access_token_expires_at is not None and shop.refresh_token_enc is not None  # expiring=1
    assert shopify_fake.valid_token(
        SHOP, runtime.vault.decrypt(shop.access_token_enc, cell_of(shop, "access_token_enc"))
    )
    # The same callback again: the state is spent.
    replay = await app.get("/auth/callback", params=callback)
    assert replay.status_code == 400 and "state" in replay.text


async def test_install_request_from_shopify_is_verified(app: httpx.AsyncClient) -> None:
    now = str(int(time.time()))
    await _install(app, **{k: v for k, v in _signed({"shop": SHOP, "timestamp": now}).items() if k != "shop"})
    forged = {"timestamp": now, "hmac": "0" * 64}
    assert (await app.get("/auth/install", params={"shop": SHOP, **forged})).status_code == 400


@pytest.mark.parametrize(
    "shop", ["evil.com", "shop-a.myshopify.com.evil.com", "", "-x.myshopify.com", "a/b.myshopify.com"]
)
async def test_malformed_shop_is_400(app: httpx.AsyncClient, shop: str) -> None:
    assert (await app.get("/auth/install", params={"shop": shop})).status_code == 400
    callback = _signed({"code": "c", "shop": shop, "state": "s", "timestamp": str(int(time.time()))})
    assert (await app.get("/auth/callback", params=callback)).status_code == 400


async def test_callback_rejections(
    app: httpx.AsyncClient, shopify_fake: ShopifyFake, caplog: pytest.LogCaptureFixture
) -> None:
    shopify_fake.add_shop(SHOP, token=None)
    grant = await _install(app)
    code = shopify_fake.authorize(SHOP)
    now = int(time.time())
    base = {"code": code, "shop": SHOP, "state": grant["state"], "timestamp": str(now)}
    cases = {
        "bad hmac": {**_signed(base), "hmac": "f" * 64},
        "other secret": _signed(base, secret="not-hush"),
        "stale": _signed({**base, "timestamp": str(now - 3600)}),
        "unknown state": _signed({**base, "state": "abc.def"}),
        "state of another shop": _signed({**base, "state": grant["state"], "shop": "other.myshopify.com"}),
    }
    for name, params in cases.items():
        response = await app.get("/auth/callback", params=params)
        assert response.status_code == 400, name
    assert code not in caplog.text and grant["state"] not in caplog.text


async def test_token_exchange_route(
    app: httpx.AsyncClient, runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    shopify_fake.add_shop(SHOP, country="NO", token=None)
    token = make_session_token(SHOP, runtime.settings)
    response = await app.post("/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json() == {
        "shop": SHOP,
        "status": "active",
        "country": "NO",
    }
    expired = make_session_token(SHOP, runtime.settings, exp=int(time.time()) - 600)
    forged = make_session_token(SHOP, runtime.settings, secret="y" * 32)
    for bad in (expired, forged, ""):
        response = await app.post("/auth/token", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401
        assert bad == "" or bad not in response.text


async def _state_rows(runtime: Runtime) -> list[OAuthState]:
    async with runtime.db.session() as session:
        return list((await session.execute(select(OAuthState))).scalars())


def _callback(code: str, state: str) -> dict[str, str]:
    return _signed({"code": code, "shop": SHOP, "state": state, "timestamp": str(int(time.time()))})


async def test_install_stores_nothing(app: httpx.AsyncClient, runtime: Runtime) -> None:
    # Unauthenticated and open to anyone: it used to store a row per call (2,800 in 5 s).
    for _ in range(200):
        await _install(app)
    assert await _state_rows(runtime) == []


async def test_expired_or_altered_state_is_refused(app: httpx.AsyncClient, runtime: Runtime) -> None:
    settings = runtime.settings
    lifetime = STATE_LIFETIME.total_seconds()
    expired = sign_state(settings, "nonce-1", SHOP, now=time.time() - lifetime - 5)
    fresh = sign_state(settings, "nonce-2", SHOP, now=time.time() - lifetime + 60)
    nonce, expires, mac = fresh.split(".")
    cases = {
        "expired": expired,
        "expiry moved on": f"{nonce}.{int(expires) + 3600}.{mac}",
        "extra part": f"{fresh}.x",
        "old format": f"{nonce}.{mac}",
    }
    for name, state in cases.items():
        response = await app.get("/auth/callback", params=_callback("c", state))
        assert response.status_code == 400 and "state" in response.text, name
    assert await _state_rows(runtime) == []


async def test_spent_states_are_remembered_until_they_expire_then_purged(
    app: httpx.AsyncClient, runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    shopify_fake.add_shop(SHOP, token=None)
    long_ago = datetime.now(UTC) - STATE_LIFETIME - timedelta(minutes=5)
    recent = datetime.now(UTC) - timedelta(minutes=2)
    async with runtime.db.transaction() as session:
        session.add(
            OAuthState(nonce="spent-long-ago", shop_domain=SHOP, created_at=long_ago, used_at=long_ago)
        )
        session.add(OAuthState(nonce="spent-recently", shop_domain=SHOP, created_at=recent, used_at=recent))
    grant = await _install(app)
    response = await app.get("/auth/callback", params=_callback(shopify_fake.authorize(SHOP), grant["state"]))
    assert response.status_code == 302
    rows = {row.nonce for row in await _state_rows(runtime)}
    assert rows == {"spent-recently", grant["state"].split(".")[0]}
    # a spent state stays spent, on a new code and a new signature too
    again = await app.get("/auth/callback", params=_callback(shopify_fake.authorize(SHOP), grant["state"]))
    assert again.status_code == 400 and "state" in again.text


async def test_a_state_is_spent_once_under_concurrent_callbacks(
    app: httpx.AsyncClient, shopify_fake: ShopifyFake
) -> None:
    shopify_fake.add_shop(SHOP, token=None)
    grant = await _install(app)
    answers = await asyncio.gather(
        *(
            app.get("/auth/callback", params=_callback(shopify_fake.authorize(SHOP), grant["state"]))
            for _ in range(4)
        )
    )
    assert sorted(answer.status_code for answer in answers) == [302, 400, 400, 400]
