from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from plugin.db import Database
from plugin.models import Shop, cell_of
from plugin.runtime import Runtime
from plugin.shopify import tokens as token_module
from plugin.shopify.operations import fetch_shop
from plugin.shopify.session_token import verify_session_token
from plugin.shopify.tokens import (
    ShopNotInstalled,
    TokenRequestFailed,
    access_token,
    admin_client,
    exchange_session_token,
    register_shop,
)
from tests.fakes.shopify import ShopifyFake
from tests.shopify.helpers import SHOP
from tests.shopify.tokens import make_session_token


async def _installed(runtime: Runtime, fake: ShopifyFake) -> Shop:
    fake.add_shop(
        SHOP, name="Snow Devil", country="FI", timezone="Europe/Helsinki", currency="EUR", token=None
    )
    session_token = make_session_token(SHOP, runtime.settings)
    claims = verify_session_token(session_token, runtime.settings)
    return await exchange_session_token(runtime, claims, session_token)


async def _row(db: Database) -> Shop:
    async with db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()


async def test_exchange_stores_encrypted_expiring_token_and_shop_details(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    shop = await _installed(runtime, shopify_fake)
    assert (shop.name, shop.country, shop.timezone, shop.currency, shop.plan) == (
        "Snow Devil",
        "FI",
        "Europe/Helsinki",
        "EUR",
        "Basic",
    )
    assert shop.status == "active" and shop.shopify_shop_id
    token = runtime.vault.decrypt(shop.access_token_enc, cell_of(shop, "access_token_enc"))
    assert token and token.startswith("shpat_") and token not in (shop.access_token_enc or "")
    refresh = runtime.vault.decrypt(shop.refresh_token_enc or "", cell_of(shop, "refresh_token_enc"))
    assert refresh is not None and refresh.startswith("shprt_")
    assert (
        runtime.vault.decrypt(shop.contact_email_enc, cell_of(shop, "contact_email_enc"))
        == "owner@example.com"
    )
    assert shop.access_token_expires_at is not None
    assert timedelta(minutes=59) < shop.access_token_expires_at - datetime.now(UTC) <= timedelta(minutes=60)
    assert shop.refresh_token_expires_at is not None
    assert shopify_fake.exchanges == 1
    client = await admin_client(runtime, SHOP)
    assert (await fetch_shop(client)).name == "Snow Devil"


async def test_exchange_with_forged_session_token_is_refused(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    shopify_fake.add_shop(SHOP, token=None)
    good = make_session_token(SHOP, runtime.settings)
    claims = verify_session_token(good, runtime.settings)
    forged = make_session_token(SHOP, runtime.settings, secret="x" * 32)
    with pytest.raises(TokenRequestFailed) as info:
        await exchange_session_token(runtime, claims, forged)
    assert info.value.status == 400 and forged not in str(info.value) and "hush" not in str(info.value)


async def _expire_soon(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Shop)
            .where(Shop.domain == SHOP)
            .values(access_token_expires_at=datetime.now(UTC) + timedelta(minutes=1))
        )


async def test_refresh_before_expiry_rotates_tokens(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    before = await _installed(runtime, shopify_fake)
    await _expire_soon(runtime.db)
    token = await access_token(runtime, SHOP)
    after = await _row(runtime.db)
    assert shopify_fake.refreshes == 1
    assert (
        token
        == runtime.vault.decrypt(after.access_token_enc, cell_of(after, "access_token_enc"))
        != runtime.vault.decrypt(before.access_token_enc, cell_of(before, "access_token_enc"))
    )
    assert runtime.vault.decrypt(
        after.refresh_token_enc, cell_of(after, "refresh_token_enc")
    ) != runtime.vault.decrypt(before.refresh_token_enc, cell_of(before, "refresh_token_enc"))
    assert shopify_fake.valid_token(SHOP, token)
    assert await access_token(runtime, SHOP) == token and shopify_fake.refreshes == 1


async def test_many_workers_refresh_once(
    runtime: Runtime, shopify_fake: ShopifyFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _installed(runtime, shopify_fake)
    await _expire_soon(runtime.db)
    real_request = token_module.request_token

    async def slow_request(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.2)  # a slow token endpoint: every worker arrives while the first waits
        return await real_request(*args, **kwargs)

    monkeypatch.setattr(token_module, "request_token", slow_request)
    # A second "instance": its own engine, HTTP client and in-process locks, same database.
    other_db = Database(runtime.db.url)
    async with httpx.AsyncClient() as http:
        other = Runtime(settings=runtime.settings, db=other_db, vault=runtime.vault, http=http)
        tokens = await asyncio.gather(*(access_token(r, SHOP) for r in [runtime, other] * 5))
    await other_db.dispose()
    assert shopify_fake.refreshes == 1  # a second refresh would have spent the rotated token
    assert len(set(tokens)) == 1 and shopify_fake.valid_token(SHOP, tokens[0])


async def test_refused_refresh_means_not_installed(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    await _installed(runtime, shopify_fake)
    await _expire_soon(runtime.db)
    shopify_fake.shops[SHOP].refresh_tokens.clear()  # e.g. revoked on uninstall
    with pytest.raises(ShopNotInstalled):
        await access_token(runtime, SHOP)


async def test_no_token_means_not_installed(runtime: Runtime) -> None:
    with pytest.raises(ShopNotInstalled):
        await admin_client(runtime, "nobody.myshopify.com")
    await register_shop(runtime, SHOP, "shpat_given", country="se", read_details=False)
    async with runtime.db.transaction() as session:
        await session.execute(update(Shop).where(Shop.domain == SHOP).values(status="uninstalled"))
    with pytest.raises(ShopNotInstalled):
        await access_token(runtime, SHOP)


async def test_register_shop_with_given_token(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    shopify_fake.add_shop(SHOP, token="shpat_given")
    shop = await register_shop(runtime, SHOP, "shpat_given", country="se")
    assert shop.country == "SE" and shop.access_token_expires_at is None
    assert await access_token(runtime, SHOP) == "shpat_given"
    client = await admin_client(runtime, SHOP)
    assert (await fetch_shop(client)).name == "shop-a"


async def test_reinstall_reads_the_shop_again(runtime: Runtime, shopify_fake: ShopifyFake) -> None:
    await _installed(runtime, shopify_fake)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Shop).where(Shop.domain == SHOP).values(status="uninstalled", access_token_enc=None)
        )
    shopify_fake.shops[SHOP].country = "SE"
    session_token = make_session_token(SHOP, runtime.settings)
    shop = await exchange_session_token(
        runtime, verify_session_token(session_token, runtime.settings), session_token
    )
    assert shop.status == "active" and shop.country == "SE"
