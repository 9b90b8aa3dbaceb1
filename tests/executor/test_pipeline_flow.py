"""A customers/redact request through the executor with recording adapters, on SQLite and
PostgreSQL: steps, holds, e-mail confirmation, certificate, evidence."""

from __future__ import annotations

import json

from adapters.base import Outcome, Result
from adapters.shopify_holdings import order_holdings
from plugin import evidence
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor.actions import confirm_step
from plugin.holdings import Category, Holding, Subject
from plugin.models import Step
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.doubles import (
    SHOP,
    CarrierByEmail,
    FakeSources,
    Ledger,
    RecordingAdapter,
    add_request,
    newsletter_holding,
    order,
    request_row,
    steps_of,
)


class ShopifyDouble(RecordingAdapter):
    name = "shopify"
    title = "Shopify"
    category = Category.CUSTOMER_ACCOUNT

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        self.ledger.calls.append((self.name, "erase", holding.ref))
        return Result(Outcome.ERASE_REQUESTED, provider_ref="erasure-1")


async def test_customer_redact_runs_to_certificate(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.enabled = [ShopifyDouble, RecordingAdapter, CarrierByEmail]
    sources.holdings["newsletter"] = [newsletter_holding()]
    # Shopify's adapter finds the orders (and their shipments at the carriers).
    sources.holdings["shopify"] = order_holdings(order(1001, tracking="00370712345"), "Europe/Stockholm")
    request_id = await add_request(runtime, orders=[1001])

    await worker.drain(limit=20)

    steps = await steps_of(runtime, request_id)
    assert steps["newsletter:erase:profile:1"].state == "done"
    assert steps["newsletter:erase:profile:1"].provider_ref == "job-profile:1"
    assert steps["shopify:keep:order:1001"].state == "held"
    held_until = steps["shopify:keep:order:1001"].next_attempt_at
    assert held_until is not None and held_until.date().isoformat() == "2031-12-31"
    assert steps["shopify:erase:order:1001:contact"].state == "done"
    carrier = steps["postnord:erase:shipment:1001:00370712345"]
    assert carrier.state == "awaiting_confirmation"
    assert carrier.provider_ref == "GAL-00370712345"  # the subject's shipments reached the adapter
    assert (await request_row(runtime, request_id)).status == "awaiting"
    # The app's own copy of the e-mail is kept until the request finishes.
    assert (await request_row(runtime, request_id)).email_enc is not None

    async with runtime.db.transaction() as session:
        await confirm_step(session, SHOP, carrier.id, "confirmed by PostNord")
    await worker.drain(limit=20)

    request = await request_row(runtime, request_id)
    assert request.status == "done"
    assert request.email_enc is None and request.email_hash is not None
    assert (await steps_of(runtime, request_id))[f"gallra:erase:request:{request_id}"].state == "done"
    assert ledger.erasures() == {"profile:1": 1, "order:1001:contact": 1, "shipment:1001:00370712345": 1}

    async with runtime.db.session() as session:
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        assert set(docs) == {"certificate_json", "certificate_html"}
        found = await read_artifact(session, runtime.vault, SHOP, docs["certificate_json"].id)
        assert found is not None
        cert = json.loads(found[1])
        html = await read_artifact(session, runtime.vault, SHOP, docs["certificate_html"].id)
        assert html is not None and "Raderingsintyg" in html[1]  # the test shop is Swedish
        check = await evidence.verify(session, SHOP)
        log = await evidence.entries(session, SHOP, request_id)
    assert {d["system"] for d in cert["done"]} == {"newsletter", "shopify", "postnord", "gallra"}
    assert cert["kept"] == [
        {
            "system": "shopify",
            "category": "accounting_record",
            "holding": "Order #1001",
            "action": "keep",
            "keep_until": "2031-12-31",
            "rule_id": "SE-1",
            "reference": "Bokföringslagen 7 kap. 2 §",
            "reason_en": "Bookkeeping",
            "reason_sv": "Bokföring",
        }
    ]
    assert "anna@example.se" not in found[1] and "anna@example.se" not in html[1]
    assert check.ok and check.entries == len(log)
    kinds = [e.kind for e in log]
    assert kinds[0] == "planned" and kinds[-1] == "request_done" and "step_confirmed" in kinds
    assert all("anna@example.se" not in json.dumps(e.payload) for e in log)


async def test_held_step_replans_when_due(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.enabled = [ShopifyDouble]
    sources.holdings["shopify"] = order_holdings(order(5), "Europe/Stockholm")
    request_id = await add_request(runtime, orders=[5])
    await worker.drain(limit=20)
    assert (await request_row(runtime, request_id)).status == "done"
    held = (await steps_of(runtime, request_id))["shopify:keep:order:5"]
    assert held.state == "held"

    # The day comes: make the hold due and let the planner see a date past the rule.
    from datetime import date, timedelta

    from plugin.models import utcnow

    async with runtime.db.transaction() as session:
        step = await session.get(Step, held.id)
        assert step is not None
        step.next_attempt_at = utcnow() - timedelta(seconds=1)
    sources.plan_today = date(2032, 1, 1)
    await worker.drain(limit=20)

    steps = await steps_of(runtime, request_id)
    assert steps["shopify:keep:order:5"].state == "done"
    assert steps["shopify:keep:order:5"].outcome == "replanned"
    replanned = [s for k, s in steps.items() if k.startswith("shopify:erase:order:5@")]
    assert [s.state for s in replanned] == ["done"]
    assert ledger.erasures("shopify")["order:5"] == 1
    assert (await request_row(runtime, request_id)).status == "done"


async def test_order_contact_at_shopify_is_covered_by_the_customer_erasure(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    """Shopify erases an order's personal data only through the customer's data erasure, so the
    order-contact step records the customer-account step's outcome instead of calling Shopify."""
    from datetime import date

    from plugin.holdings import Category, Holding

    sources.enabled = [ShopifyDouble]
    account = Holding(
        "shopify",
        Category.CUSTOMER_ACCOUNT,
        "customer:7",
        "Customer account 7",
        last_activity=date(2026, 1, 1),
    )
    sources.holdings["shopify"] = [account, *order_holdings(order(9), "Europe/Stockholm")]
    request_id = await add_request(runtime, orders=[9])
    await worker.drain(limit=20)
    steps = await steps_of(runtime, request_id)
    contact = steps["shopify:erase:order:9:contact"]
    # Verified with the customer's erasure (which this double carries out at once).
    assert (contact.state, contact.outcome, contact.verification) == (
        "done",
        "erase_requested",
        "verified_absent",
    )
    assert contact.verification_detail == "verified with step shopify:erase:customer:7"
    assert ledger.erasures("shopify") == {"customer:7": 1}
