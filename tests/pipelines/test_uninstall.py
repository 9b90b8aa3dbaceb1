"""app/uninstalled is confirmed, not trusted: intake records a claim, and the clocks mark the shop
uninstalled (and drop its tokens) only when Shopify refuses its token. A replay after a reinstall
finds the token working and is ignored. Shopify is the stateful fake of tests/fakes/shopify.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from plugin.clocks import JOBS, check_uninstalls
from plugin.models import Evidence, Shop, cell_of, utcnow
from plugin.pipelines.uninstall import Verdict, confirm_uninstalls, token_verdict
from plugin.runtime import Runtime
from plugin.shopify.tokens import register_shop
from tests.executor.doubles import SHOP

TOKEN = "shpat_test"


async def _claimed(runtime: Runtime) -> None:
    """What intake records for an app/uninstalled delivery (tests/intake/test_routes.py)."""
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Shop)
            .where(Shop.domain == SHOP)
            .values(uninstall_claimed_at=utcnow() - timedelta(minutes=2))
        )


async def _shop(runtime: Runtime) -> Shop:
    async with runtime.db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()


async def _evidence(runtime: Runtime) -> list[str]:
    async with runtime.db.session() as session:
        return list(
            (await session.execute(select(Evidence.kind).where(Evidence.shop_domain == SHOP))).scalars()
        )


async def test_confirmed_when_shopify_refuses_the_token(runtime: Runtime, shopify_fake: Any) -> None:
    shopify_fake.add_shop(SHOP, token=TOKEN)
    await register_shop(runtime, SHOP, TOKEN)
    await _claimed(runtime)
    shopify_fake.shops[SHOP].tokens.clear()  # what an uninstall does to the token
    now = utcnow()
    assert await confirm_uninstalls(runtime, now=now) == 1
    shop = await _shop(runtime)
    assert (shop.status, shop.uninstalled_at, shop.uninstall_claimed_at) == ("uninstalled", now, None)
    assert shop.access_token_enc is None and shop.refresh_token_enc is None
    assert await _evidence(runtime) == ["uninstall_confirmed"]
    # nothing left to decide
    assert await confirm_uninstalls(runtime) == 0


async def test_replay_after_reinstall_is_ignored_while_the_token_works(
    runtime: Runtime, shopify_fake: Any
) -> None:
    shopify_fake.add_shop(SHOP, token=TOKEN)
    await register_shop(runtime, SHOP, TOKEN)
    await _claimed(runtime)
    assert await confirm_uninstalls(runtime) == 1
    shop = await _shop(runtime)
    assert (shop.status, shop.uninstall_claimed_at, shop.uninstalled_at) == ("active", None, None)
    assert runtime.vault.decrypt(shop.access_token_enc, cell_of(shop, "access_token_enc")) == TOKEN
    assert await _evidence(runtime) == ["uninstall_ignored"]


async def test_no_answer_decides_nothing(runtime: Runtime, shopify_fake: Any) -> None:
    fake = shopify_fake.add_shop(SHOP, token=TOKEN)
    await register_shop(runtime, SHOP, TOKEN)
    await _claimed(runtime)
    fake.tokens.clear()
    fake.failures.extend([httpx.Response(503), None])  # a 5xx, then a network error
    assert await token_verdict(runtime, SHOP) is Verdict.UNKNOWN
    assert await confirm_uninstalls(runtime) == 1  # Shopify answers this time: 401
    assert (await _shop(runtime)).status == "uninstalled"


async def test_a_reinstall_during_the_check_wins(runtime: Runtime, shopify_fake: Any) -> None:
    """The old token is refused, but the shop was reinstalled (new grant) while Gallra asked."""
    await register_shop(runtime, SHOP, TOKEN)
    await _claimed(runtime)

    async def refused_but_reinstalled(runtime: Runtime, domain: str) -> Verdict:
        await register_shop(runtime, domain, "shpat_new")
        return Verdict.UNINSTALLED

    assert await confirm_uninstalls(runtime, check=refused_but_reinstalled) == 0
    shop = await _shop(runtime)
    assert (shop.status, shop.uninstall_claimed_at) == ("active", None)
    assert runtime.vault.decrypt(shop.access_token_enc, cell_of(shop, "access_token_enc")) == "shpat_new"


async def test_the_clock_job_confirms_claims(runtime: Runtime, shopify_fake: Any) -> None:
    assert any(job.func is check_uninstalls for job in JOBS)
    shopify_fake.add_shop(SHOP, token=TOKEN)
    await register_shop(runtime, SHOP, TOKEN)
    await _claimed(runtime)
    shopify_fake.shops[SHOP].tokens.clear()
    assert await check_uninstalls(runtime) == 1
    assert (await _shop(runtime)).status == "uninstalled"
