"""Every page and API call checks the session token; forms need CSRF; frames only in the shop."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
from sqlalchemy import select

from plugin.admin.auth import check_csrf, make_csrf
from plugin.models import Shop
from plugin.runtime import Runtime
from plugin.shopify.session_token import verify_session_token
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, csrf_of, get_page, post_form, token
from tests.admin.seed import Seeded
from tests.conftest import make_settings

FRAME_A = "frame-ancestors https://shop-a.myshopify.com https://admin.shopify.com"


async def test_page_with_valid_token_renders_with_the_shop_only_framing(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    response = await get_page(client, runtime, SHOP_A, "/admin")
    assert response.status_code == 200
    assert FRAME_A in response.headers["content-security-policy"]
    assert "shop-b" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert f"/admin/requests/{shops[0].open_request}" in response.text


async def test_page_without_token_is_a_bounce_page_without_data(
    client: httpx.AsyncClient, shops: tuple[Seeded, Seeded]
) -> None:
    response = await client.get(f"/admin?shop={SHOP_A}&host=abc")
    assert response.status_code == 200
    assert "data-bounce" in response.text
    assert f"/admin/requests/{shops[0].open_request}" not in response.text
    assert "https://cdn.shopify.com/shopifycloud/app-bridge.js" in response.text
    assert FRAME_A in response.headers["content-security-policy"]
    # No valid shop named: nobody may frame it.
    bare = await client.get("/admin?shop=evil.example.com")
    assert "frame-ancestors 'none'" in bare.headers["content-security-policy"]


async def test_expired_token_bounces_and_forged_tokens_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    expired = token(runtime, SHOP_A, exp=int(time.time()) - 120)
    assert "data-bounce" in (await client.get(f"/admin?id_token={expired}")).text
    forged = token(runtime, SHOP_A, secret="not-the-secret")
    for bad in (
        forged,
        token(runtime, SHOP_A, aud="another-app"),
        token(runtime, SHOP_A, exp=None),
        token(runtime, SHOP_A, dest="https://shop-b.myshopify.com"),
        "not-a-jwt",
    ):
        response = await client.get(f"/admin/requests/{shops[0].open_request}?id_token={bad}")
        assert response.status_code == 401, bad
        assert "Jane" not in response.text and str(shops[0].open_request) not in response.text


async def test_api_requires_a_bearer_token(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    assert (await client.get("/admin/api/overview")).status_code == 401
    # A token in the query string is for page loads only, never the API.
    assert (await client.get(f"/admin/api/overview?id_token={token(runtime, SHOP_A)}")).status_code == 401
    expired = await client.get(
        "/admin/api/overview", headers=bearer(runtime, SHOP_A, exp=int(time.time()) - 120)
    )
    assert expired.status_code == 401
    assert expired.headers["x-shopify-retry-invalid-session-request"] == "1"
    forged = await client.get("/admin/api/overview", headers=bearer(runtime, SHOP_A, secret="wrong"))
    assert forged.status_code == 401
    ok = await client.get("/admin/api/overview", headers=bearer(runtime, SHOP_A))
    assert ok.status_code == 200
    assert ok.json()["shop"] == SHOP_A
    assert FRAME_A in ok.headers["content-security-policy"]


async def test_forms_need_csrf_bound_to_the_shop_and_same_origin(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    path = "/admin/shop/dry-run"
    no_csrf = await client.post(path, data={"id_token": token(runtime, SHOP_A), "on": "1"})
    assert no_csrf.status_code == 403
    # Shop B's CSRF field with shop A's token: refused.
    foreign = await post_form(client, runtime, SHOP_A, path, {"on": "1"}, csrf_from=SHOP_B)
    assert foreign.status_code == 403
    page = await get_page(client, runtime, SHOP_A, "/admin")
    fields = {"csrf": csrf_of(page.text), "id_token": token(runtime, SHOP_A), "on": "1"}
    cross = await client.post(path, data=fields, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    other = await client.post(path, data=fields, headers={"Origin": "https://evil.example"})
    assert other.status_code == 403
    no_token = await client.post(path, data={"csrf": fields["csrf"], "on": "1"})
    assert no_token.status_code == 401
    ok = await client.post(path, data=fields, headers={"Origin": "http://testserver"})
    assert ok.status_code == 303
    assert ok.headers["location"].startswith("/admin/adapters?")


def test_csrf_values_expire_and_are_bound_to_shop_and_user() -> None:
    runtime = Runtime.build(make_settings())
    claims_a = verify_session_token(make_token(runtime, SHOP_A), runtime.settings)
    claims_b = verify_session_token(make_token(runtime, SHOP_B), runtime.settings)
    value = make_csrf(runtime, claims_a, now=1_000_000)
    assert check_csrf(runtime, claims_a, value, now=1_000_100)
    assert not check_csrf(runtime, claims_b, value, now=1_000_100)
    assert not check_csrf(runtime, claims_a, value, now=1_000_000 + 5 * 3600)
    assert not check_csrf(runtime, claims_a, value.replace(".", ".0"), now=1_000_100)
    assert not check_csrf(runtime, claims_a, "garbage", now=1_000_100)


def make_token(runtime: Runtime, shop: str) -> str:
    return token(runtime, shop)


async def test_dev_login_is_off_unless_gallra_dev(client: httpx.AsyncClient, runtime: Runtime) -> None:
    from plugin.admin.dev_login import login_url

    url = login_url(SHOP_A, runtime.settings)
    assert (await client.get(url.replace("http://127.0.0.1:8000", ""))).status_code == 404
    assert (await client.post("/admin/dev/session-token")).status_code == 404


async def test_dev_login_sets_a_cookie_that_mints_verifiable_tokens(
    runtime: Runtime, shops: tuple[Seeded, Seeded]
) -> None:
    from plugin.admin.dev_login import COOKIE, login_url
    from tests.admin.conftest import admin_app

    dev_runtime = Runtime(
        settings=make_settings(runtime.db.url, dev=True),
        db=runtime.db,
        vault=runtime.vault,
        http=runtime.http,
    )
    transport = httpx.ASGITransport(app=admin_app(dev_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.post("/admin/dev/session-token")).status_code == 401
        bad = await http.get("/admin/dev-login?ticket=forged")
        assert bad.status_code == 401
        expired = login_url(SHOP_A, dev_runtime.settings, now=time.time() - 3600)
        assert (await http.get(expired.split("8000", 1)[1])).status_code == 401
        url = login_url(SHOP_A, dev_runtime.settings).split("8000", 1)[1]
        login = await http.get(url)
        assert login.status_code == 303
        assert login.headers["location"] == f"/admin?shop={SHOP_A}"
        cookie = login.headers["set-cookie"]
        assert COOKIE in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        minted = (await http.post("/admin/dev/session-token")).json()["token"]
        claims = verify_session_token(minted, dev_runtime.settings)
        assert claims.shop == SHOP_A
        page = await http.get(f"/admin?id_token={minted}")
        assert page.status_code == 200 and "/admin/static/dev-bridge.js" in page.text
        # The dev cookie alone opens nothing: pages still need the session token.
        assert "data-bounce" in (await http.get("/admin")).text
        # The dev login made a row for a shop that had none (shop A was seeded; C is new).
        new = await http.get(login_url("shop-c.myshopify.com", dev_runtime.settings).split("8000", 1)[1])
        assert new.status_code == 303
        async with runtime.db.session() as session:
            domains = set((await session.execute(select(Shop.domain))).scalars())
        assert "shop-c.myshopify.com" in domains
        # A ticket signed with another secret is refused.
        forged = jwt.encode({"shop": SHOP_B, "aud": "gallra-dev-login", "exp": time.time() + 60}, "x")
        assert (await http.get(f"/admin/dev-login?ticket={forged}")).status_code == 401


def test_the_app_mounts_the_admin_routes() -> None:
    from plugin.app import ROUTE_MODULES

    assert "plugin.admin.routes" in ROUTE_MODULES


async def test_first_open_exchanges_the_session_token_for_an_offline_token(
    client: httpx.AsyncClient, runtime: Runtime, shopify_fake: Any
) -> None:
    """Managed install: the shop opens the app before Gallra holds a token for it; the page's
    session token is exchanged (by the Shopify stage) and the shop's row and language follow."""
    new = "shop-new.myshopify.com"
    shopify_fake.add_shop(new, country="SE", timezone="Europe/Stockholm")
    response = await get_page(client, runtime, new, "/admin/policy")
    assert response.status_code == 200
    assert shopify_fake.shops[new].exchanges == 1
    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == new))).scalar_one()
    assert shop.access_token_enc and shop.country == "SE"
    # The policy follows the country read at install, and so does the page's language (no locale
    # yet: the country decides, `plugin.i18n.shop_language`).
    assert '<html lang="sv">' in response.text and "Sverige" in response.text
    # Next load: the stored token is used, no second exchange.
    assert (await get_page(client, runtime, new, "/admin")).status_code == 200
    assert shopify_fake.shops[new].exchanges == 1
