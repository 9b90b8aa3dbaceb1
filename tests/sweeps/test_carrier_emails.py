"""A sweep's shipments at an e-mail carrier (PostNord): carried out by the executor through the
outbox, each expired shipment is named in exactly one e-mail of the day's request, and each step's
e-mail names the shipment that step covers (a sweep request has no subject: its shipment steps
are many people's, and more are queued while the first ones already run)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from plugin.executor.worker import Worker
from plugin.models import OutboxMessage, Request, Step
from plugin.runtime import Runtime
from plugin.sweeps.run import run_sweep
from tests.fakes.shopify import ShopifyFake
from tests.sweeps.shopdata import NOW, SHOP
from tests.sweeps.test_with_shopify import twelve_year_shop


def tracking_of(ref: str) -> str:
    return ref.split(":", 2)[2]


async def test_each_swept_shipment_is_named_in_exactly_one_email(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    await twelve_year_shop(runtime, shopify_fake)
    # Small batches: the request's shipment steps arrive over several transactions, as in a large
    # shop, and the worker runs the first ones before the rest are queued.
    report = await run_sweep(runtime, SHOP, now=NOW, batch_size=40)
    assert report["status"] == "done" and report["dry_run"] is False
    await Worker(runtime).drain(limit=120)

    async with runtime.db.session() as session:
        request = (await session.execute(select(Request).where(Request.kind == "sweep"))).scalar_one()
        steps = list(
            (
                await session.execute(
                    select(Step).where(Step.request_id == request.id, Step.system == "postnord")
                )
            ).scalars()
        )
        messages = list(
            (await session.execute(select(OutboxMessage).where(OutboxMessage.shop_domain == SHOP))).scalars()
        )
    assert len(steps) >= 3, "the test shop must give the sweep several PostNord shipments"
    assert all(step.state == "awaiting_confirmation" or step.outcome for step in steps)
    bodies = {m.reference: runtime.vault.decrypt(m.body_enc) or "" for m in messages}
    swept = {tracking_of(step.holding_ref or "") for step in steps}

    # Every swept shipment is named in exactly one e-mail, and no e-mail names anything else.
    named: Counter[str] = Counter()
    for body in bodies.values():
        named.update(t for t in swept if t in body)
    assert named == Counter(dict.fromkeys(swept, 1))
    assert len(messages) == len(steps)
    # Each step's e-mail (its provider reference) names the shipment the step covers.
    for step in steps:
        assert step.provider_ref in bodies
        assert tracking_of(step.holding_ref or "") in bodies[step.provider_ref]
        assert "Shipments (1)" in bodies[step.provider_ref] or "Försändelser (1)" in bodies[step.provider_ref]
