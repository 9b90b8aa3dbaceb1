"""Issue 13 end to end, over HTTP: an installed shop survives a replayed app/uninstalled and a
shop/redact; once Shopify really uninstalls it, the held redaction is carried out 48 hours later,
and a replay after the purge does nothing. Shopify is the stateful fake of tests/fakes/shopify.py;
the worker's clock is moved forward."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from plugin.app import create_app
from plugin.executor.context import WorkerConfig
from plugin.models import Request, Shop, cell_of, utcnow
from plugin.pipelines.shop_redact import SHOP_REDACT_DELAY
from plugin.pipelines.uninstall import confirm_uninstalls
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.shopify.tokens import register_shop
from tests.conftest import serving
from tests.executor.doubles import SHOP, FakeSources
from tests.intake.conftest import APP_UNINSTALLED, SHOP_REDACT, Sender
from tests.pipelines.test_shop_redact import Clock

TOKEN = "shpat_live"


async def _shop(runtime: Runtime) -> Shop:
    async with runtime.db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()


async def _requests(runtime: Runtime) -> list[tuple[str, str, str | None]]:
    async with runtime.db.session() as session:
        rows = await session.execute(select(Request.kind, Request.status, Request.hold_reason))
        return [(kind, status, reason) for kind, status, reason in rows.all()]


async def test_replays_and_redactions_of_an_installed_shop(
    runtime: Runtime, sources: FakeSources, shopify_fake: Any
) -> None:
    shopify_fake.add_shop(SHOP, token=TOKEN)
    await register_shop(runtime, SHOP, TOKEN)
    uninstalled = {**APP_UNINSTALLED, "myshopify_domain": SHOP, "domain": "demo.example"}
    redact = {**SHOP_REDACT, "shop_domain": SHOP}
    async with serving(create_app(runtime)) as client:
        sender = Sender(client)
        # An old app/uninstalled replayed (new webhook id, no triggered-at) and a shop/redact.
        assert (
            await sender.send("app/uninstalled", uninstalled, shop=None, triggered_at=None)
        ).status_code == 200
        stored = await sender.send("shop/redact", redact, shop=None)
        assert stored.json()["status"] == "stored"
        clock = Clock()
        worker = Worker(
            runtime,
            WorkerConfig(owner="w-flow", lease_seconds=30.0, poll_seconds=0.05, clock=clock),
            sources,
        )
        await worker.drain(limit=20)
        assert await _requests(runtime) == [("shop_redact", "on_hold", "uninstall_unconfirmed")]

        # Shopify answers the shop's token: installed, the claim is dismissed, nothing changes.
        assert await confirm_uninstalls(runtime, now=clock()) == 1
        shop = await _shop(runtime)
        assert (shop.status, shop.uninstall_claimed_at) == ("active", None)
        assert runtime.vault.decrypt(shop.access_token_enc, cell_of(shop, "access_token_enc")) == TOKEN

        # The owner really uninstalls: Shopify revokes the token and sends app/uninstalled.
        shopify_fake.shops[SHOP].tokens.clear()
        now = utcnow().isoformat().replace("+00:00", "Z")
        assert (await sender.send("app/uninstalled", uninstalled, triggered_at=now)).status_code == 200
        uninstalled_at = clock.advance(timedelta(hours=1))
        assert await confirm_uninstalls(runtime, now=uninstalled_at) == 1
        assert (await _shop(runtime)).status == "uninstalled"
        # Shopify's own shop/redact 48 h later is the same request as the early one.
        again = await sender.send("shop/redact", redact)
        assert again.json() == {"status": "duplicate", "request_id": stored.json()["request_id"]}

        await worker.drain(limit=20)
        assert await _requests(runtime) == [("shop_redact", "on_hold", "within_48h")]
        clock.advance(SHOP_REDACT_DELAY)
        await worker.drain(limit=20)
        assert await _requests(runtime) == [("shop_redact", "done", None)]
        assert (await _shop(runtime)).status == "redacted"

        # Replays after the purge: nothing new.
        replay = await sender.send("shop/redact", redact, shop="other.myshopify.com")
        assert replay.json()["status"] == "duplicate"
        assert (await sender.send("app/uninstalled", uninstalled, triggered_at=None)).status_code == 200
    assert (await _shop(runtime)).uninstall_claimed_at is None  # a redacted shop takes no claim
    assert await _requests(runtime) == [("shop_redact", "done", None)]
    async with runtime.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Shop))).scalar_one() == 1
