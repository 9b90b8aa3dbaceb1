"""Legal holds and Shopify's automatic holds through the executor, with the real retention planner
(the Swedish preset) and recording adapters, on SQLite and PostgreSQL: a hold blocks a customer's
redaction until it is released (by the owner, or by the clock after its end date), and an order
with an open dispute or return is kept until Shopify says it is settled."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from adapters.shopify_holdings import order_holdings
from plugin import evidence, legal_holds, retention
from plugin.clocks import release_legal_holds
from plugin.documents.store import artifacts_of, read_artifact
from plugin.holdings import Category, Holding
from plugin.models import Evidence, LegalHold, Request, Shop, Step, utcnow
from plugin.pipelines.shop_redact import redact_shop
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.shopify.records import OrderRecord
from tests.executor.doubles import SHOP, FakeSources, Ledger, add_request, order, steps_of
from tests.executor.test_pipeline_flow import ShopifyDouble

REASON = "Tvist om faktura 2026-114, advokat Berg"
EMAIL = "anna@example.se"


def real_plan(shop: Shop, holdings: Sequence[Holding], today: date, mode: str) -> list[Any]:
    return list(
        retention.plan(
            list(holdings), retention.default_policy_for("SE"), today, retention.Mode(mode)
        ).decisions
    )


def account() -> Holding:
    """A holding nothing keeps against an erasure request: erased unless something holds it."""
    return Holding("newsletter", Category.CUSTOMER_ACCOUNT, "account:7", "Tool account 7")


async def place(runtime: Runtime, **kwargs: Any) -> int:
    values: dict[str, Any] = {"customer_id": 7, "email": None, "reason": REASON, "placed_by": "Eva (owner)"}
    values.update(kwargs)
    async with runtime.db.transaction() as session:
        hold = await legal_holds.place(session, runtime.vault, SHOP, **values)
        return hold.id


async def release(runtime: Runtime, hold_id: int, shop: str = SHOP) -> None:
    async with runtime.db.transaction() as session:
        await legal_holds.release(
            session, runtime.vault, shop, hold_id, released_by="Eva (owner)", reason="settled out of court"
        )


async def certificate(runtime: Runtime, request_id: int) -> tuple[dict[str, Any], str]:
    async with runtime.db.session() as session:
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        found_json = await read_artifact(session, runtime.vault, SHOP, docs["certificate_json"].id)
        found_html = await read_artifact(session, runtime.vault, SHOP, docs["certificate_html"].id)
    assert found_json is not None and found_html is not None
    return json.loads(found_json[1]), str(found_html[1])


async def hold_entries(runtime: Runtime) -> list[Evidence]:
    async with runtime.db.session() as session:
        rows = await evidence.entries(session, SHOP)
    return [row for row in rows if row.kind.startswith("legal_hold_")]


def assert_public_parts_clean(entries: list[Evidence]) -> None:
    for row in entries:
        public = json.dumps(row.payload, ensure_ascii=False)
        assert "Berg" not in public and "Eva" not in public and "@" not in public and "settled" not in public
        assert row.payload["hold_id"] > 0
        assert row.identifiers is not None and "hold" in row.identifiers


async def test_a_hold_blocks_a_redaction_until_released_then_the_replan_erases(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.plan = real_plan  # type: ignore[method-assign]
    sources.holdings["newsletter"] = [account()]
    hold_id = await place(runtime)
    request_id = await add_request(runtime)

    await worker.drain(limit=20)

    assert ledger.erasures() == {}
    steps = await steps_of(runtime, request_id)
    kept = steps["newsletter:keep:account:7"]
    assert kept.state == "held" and kept.decision["rule_id"] == "HOLD-CUSTOMER_ACCOUNT"
    assert f"legal_hold:{hold_id}" in kept.decision["holding"]["flags"]
    # Gallra's own copy of the request is the customer's data too: held, not erased.
    assert steps[f"gallra:keep:request:{request_id}"].state == "held"
    document, html = await certificate(runtime, request_id)
    row = next(k for k in document["kept"] if k["holding"] == "Tool account 7")
    assert row["legal_hold"] == {
        "hold_id": hold_id,
        "reason": REASON,
        "since": utcnow().date().isoformat(),
        "until": None,
    }
    assert f"kept: legal hold — {REASON}, since {row['legal_hold']['since']}" in html or (
        f"sparat: rättslig spärr — {REASON}" in html
    )

    await release(runtime, hold_id)
    await worker.drain(limit=20)

    assert ledger.erasures() == {"account:7": 1}
    steps = await steps_of(runtime, request_id)
    assert steps["newsletter:keep:account:7"].outcome == "replanned"
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.status == "done"
    entries = await hold_entries(runtime)
    assert [e.kind for e in entries] == ["legal_hold_placed", "legal_hold_released"]
    assert entries[1].identifiers is not None
    assert entries[1].identifiers["hold"] == {"reason": "settled out of court", "by": "Eva (owner)"}
    assert_public_parts_clean(entries)


async def test_a_hold_by_email_with_an_end_date_is_released_by_the_clock(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.plan = real_plan  # type: ignore[method-assign]
    sources.holdings["newsletter"] = [account()]
    ends = utcnow().date() + timedelta(days=30)
    hold_id = await place(runtime, customer_id=None, email=" Anna@Example.se ", ends_on=ends)
    request_id = await add_request(runtime, email=EMAIL, customer_id=99)

    await worker.drain(limit=20)

    kept = (await steps_of(runtime, request_id))["newsletter:keep:account:7"]
    assert kept.state == "held" and kept.decision["keep_until"] == ends.isoformat()
    assert kept.next_attempt_at is not None and kept.next_attempt_at.date() == ends
    assert ledger.erasures() == {}

    # Nothing expires before the end date has passed in the shop's time zone.
    assert await release_legal_holds(runtime, now=utcnow()) == 0
    assert await release_legal_holds(runtime, now=utcnow() + timedelta(days=32)) == 1
    # The clock woke the held steps as of its own time; a worker running then picks them up.
    async with runtime.db.transaction() as session:
        await session.execute(update(Step).where(Step.state == "held").values(next_attempt_at=utcnow()))
    await worker.drain(limit=20)

    assert ledger.erasures() == {"account:7": 1}
    async with runtime.db.session() as session:
        hold = await session.get(LegalHold, hold_id)
        assert hold is not None and hold.released_how == "expired" and hold.released_at is not None
        assert hold.email_enc is not None and "@" not in hold.email_enc and "anna" not in hold.reason_enc
    entries = await hold_entries(runtime)
    assert [e.kind for e in entries] == ["legal_hold_placed", "legal_hold_expired"]
    assert_public_parts_clean(entries)
    assert entries[1].payload["ends_on"] == ends.isoformat()


def claim_order(*, open_dispute: bool = False, open_return: bool = False) -> OrderRecord:
    return dataclasses.replace(
        order(1001, tracking="00370712345"), open_dispute=open_dispute, open_return=open_return
    )


async def _order_kept_until_settled(
    runtime: Runtime,
    worker: Worker,
    sources: FakeSources,
    ledger: Ledger,
    flag: str,
    rule: str,
    **claim: bool,
) -> None:
    sources.plan = real_plan  # type: ignore[method-assign]
    sources.enabled = [ShopifyDouble]
    open_order = claim_order(**claim)
    sources.holdings["shopify"] = order_holdings(open_order, "Europe/Stockholm")
    sources.orders[1001] = open_order
    request_id = await add_request(runtime, orders=[1001])

    await worker.drain(limit=20)

    steps = await steps_of(runtime, request_id)
    contact = steps["shopify:keep:order:1001:contact"]
    assert contact.state == "held" and contact.decision["rule_id"] == f"{rule}-ORDER_CONTACT"
    assert flag in contact.decision["holding"]["flags"]
    assert ledger.erasures("shopify") == {}

    # The next day it is looked at again; Shopify still says open: kept.
    async with runtime.db.transaction() as session:
        await session.execute(update(Step).where(Step.id == contact.id).values(next_attempt_at=utcnow()))
    await worker.drain(limit=20)
    assert (await steps_of(runtime, request_id))["shopify:keep:order:1001:contact"].state == "held"
    assert ledger.erasures("shopify") == {}

    # Settled at Shopify: the re-plan reads the order again and the contact details go.
    sources.orders[1001] = claim_order()
    async with runtime.db.transaction() as session:
        await session.execute(update(Step).where(Step.id == contact.id).values(next_attempt_at=utcnow()))
    await worker.drain(limit=20)

    steps = await steps_of(runtime, request_id)
    assert steps["shopify:keep:order:1001:contact"].outcome == "replanned"
    assert ledger.erasures("shopify") == {"order:1001:contact": 1}
    # The voucher itself stays: for the dispute, and once that is settled, for bookkeeping.
    voucher = steps["shopify:keep:order:1001"]
    assert voucher.state == "held" and voucher.decision["rule_id"] == f"{rule}-ACCOUNTING_RECORD"
    async with runtime.db.transaction() as session:
        await session.execute(update(Step).where(Step.id == voucher.id).values(next_attempt_at=utcnow()))
    await worker.drain(limit=20)
    voucher = (await steps_of(runtime, request_id))["shopify:keep:order:1001"]
    assert voucher.state == "held" and voucher.decision["rule_id"].startswith("SE-")
    assert voucher.decision["keep_until"] > "2032-01-01"
    assert ledger.erasures("shopify") == {"order:1001:contact": 1}


async def test_a_disputed_order_is_kept_until_the_dispute_is_resolved(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    await _order_kept_until_settled(
        runtime, worker, sources, ledger, "open_dispute", "DISPUTE", open_dispute=True
    )


async def test_an_order_with_an_open_return_is_kept_until_the_return_is_settled(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    await _order_kept_until_settled(
        runtime, worker, sources, ledger, "open_return", "RETURN", open_return=True
    )


async def test_shop_redact_leaves_a_held_customers_requests_until_the_hold_is_released(
    runtime: Runtime, worker: Worker
) -> None:
    hold_id = await place(runtime)
    held_request = await add_request(runtime, customer_id=7, email=EMAIL, key="held")
    other_request = await add_request(runtime, customer_id=8, email="bo@example.se", key="other")
    redact = await add_request(runtime, kind="shop_redact", key="redact", customer_id=0)
    async with runtime.db.transaction() as session:
        request = await session.get(Request, redact)
        assert request is not None
        counts = await redact_shop(session, runtime.vault, request)
        await session.execute(update(Shop).where(Shop.domain == SHOP).values(status="redacted"))
        await session.execute(update(Request).where(Request.id == redact).values(status="done"))
    assert counts["requests"] == 1
    async with runtime.db.session() as session:
        left = set((await session.execute(select(Request.id).where(Request.shop_domain == SHOP))).scalars())
        assert left == {held_request, redact} and other_request not in left
        assert await session.get(LegalHold, hold_id) is not None

    await release(runtime, hold_id)

    # The release opened the shop's redaction again: it now takes the rest.
    async with runtime.db.session() as session:
        request = await session.get(Request, redact)
        assert request is not None and request.status == "received"
    async with runtime.db.transaction() as session:
        request = await session.get(Request, redact)
        assert request is not None
        counts = await redact_shop(session, runtime.vault, request)
    assert counts["requests"] == 1 and counts["legal_holds"] == 1
