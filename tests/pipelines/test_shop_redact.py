"""shop/redact: everything the app holds for the shop goes; the evidence log stays, reduced to
non-personal fields and still verifiable; running it again changes nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from plugin import evidence
from plugin.executor.worker import Worker
from plugin.models import AdapterConnection, Artifact, Evidence, Request, Shop, connection_cell, shop_cell
from plugin.runtime import Runtime
from tests.executor.doubles import SHOP, FakeSources, add_request, newsletter_holding


async def test_shop_redact_erases_all_but_reduced_evidence(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    await add_request(runtime)
    await add_request(runtime, "data_request", key="dr")
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.access_token_enc = runtime.vault.encrypt("shpat_secret", shop_cell("access_token_enc", SHOP))
        shop.contact_email_enc = runtime.vault.encrypt("owner@shop.se", shop_cell("contact_email_enc", SHOP))
        session.add(
            AdapterConnection(
                shop_domain=SHOP,
                adapter="klaviyo",
                config_enc=runtime.vault.encrypt_json({}, connection_cell(SHOP, "klaviyo")),
            )
        )
    await worker.drain(limit=20)
    redact = await add_request(runtime, "shop_redact", email="", key="shop")
    await worker.drain(limit=20)

    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        requests = (await session.execute(select(Request).where(Request.shop_domain == SHOP))).scalars().all()
        artifacts = await session.scalar(
            select(func.count()).select_from(Artifact).where(Artifact.shop_domain == SHOP)
        )
        connections = await session.scalar(select(func.count()).select_from(AdapterConnection))
        payloads = (
            (await session.execute(select(Evidence.payload).where(Evidence.shop_domain == SHOP)))
            .scalars()
            .all()
        )
        chain = await evidence.verify(session, SHOP)
    assert shop.status == "redacted"
    assert shop.access_token_enc is None and shop.contact_email_enc is None and shop.name is None
    assert [(r.id, r.status, r.email_enc, r.email_hash) for r in requests] == [(redact, "done", None, None)]
    assert artifacts == 0 and connections == 0
    assert payloads and all(evidence.SUBJECT not in p for p in payloads)
    assert chain.ok

    # Idempotent: a second run of the same request changes nothing and adds no second record.
    async with runtime.db.transaction() as session:
        request = await session.get(Request, redact)
        assert request is not None
        request.status = "received"
    await worker.drain(limit=20)
    async with runtime.db.session() as session:
        kinds = (
            (await session.execute(select(Evidence.kind).where(Evidence.kind == "shop_redacted")))
            .scalars()
            .all()
        )
        assert len(kinds) == 1
        assert (await evidence.verify(session, SHOP)).ok
