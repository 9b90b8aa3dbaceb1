"""`customers/merge` applied (plugin/pipelines/merges.py): open requests and pending Shopify
erasures of the deleted customer follow the kept one, in the merge's shop only; a failed merge
changes nothing; the certificate names both ids. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from plugin import evidence, legal_holds
from plugin.app import create_app
from plugin.clocks import JOBS
from plugin.db import Database
from plugin.documents.certificate import build_certificate, render_certificate_html
from plugin.ledger import NewRequest, insert_request
from plugin.models import CustomerMerge, Evidence, LegalHold, Request, ShopifyErasure, Step, utcnow
from plugin.pipelines import merges
from plugin.runtime import Runtime
from plugin.shopify import erasures
from tests.conftest import serving
from tests.intake.conftest import body_of, headers_for

SHOP = "merging.myshopify.com"
OTHER = "unrelated.myshopify.com"
KEPT, GONE = 1001, 2002


async def _request(
    runtime: Runtime, *, shop: str = SHOP, customer: int = GONE, kind: str = "customer_redact", status: str
) -> int:
    async with runtime.db.transaction() as session:
        request_id = await insert_request(
            session,
            runtime.vault,
            NewRequest(
                kind=kind,
                shop_domain=shop,
                business_key=f"customer:{customer}|orders:|{status}",
                customer_id=customer,
                email="vera@example.se",
                data_request_id=7 if kind == "data_request" else None,
            ),
        )
        assert request_id is not None
        row = await session.get(Request, request_id)
        assert row is not None
        row.status = status
    return request_id


async def _erasure(runtime: Runtime, request_id: int, *, shop: str = SHOP, state: str = "requested") -> int:
    async with runtime.db.transaction() as session:
        await erasures.track(
            session,
            shop_domain=shop,
            customer_id=GONE,
            request_id=request_id,
            step_id=None,
            requested_at=utcnow(),
            last_order_at=None,
        )
        row = (
            await session.execute(
                select(ShopifyErasure).where(
                    ShopifyErasure.shop_domain == shop, ShopifyErasure.request_id == request_id
                )
            )
        ).scalar_one()
        row.state = state
        return row.id


async def _merge(runtime: Runtime, status: str = "completed", *, shop: str = SHOP) -> None:
    async with runtime.db.transaction() as session:
        session.add(
            CustomerMerge(
                shop_domain=shop,
                business_key=f"{KEPT}<{GONE}|{status}|-",
                kept_customer_id=KEPT,
                deleted_customer_id=GONE,
                status=status,
                state="received",
            )
        )


async def _rows(db: Database, model: Any, *ids: int) -> list[Any]:
    async with db.session() as session:
        return [await session.get(model, row_id) for row_id in ids]


async def test_open_request_and_pending_erasure_follow_the_kept_customer(
    runtime: Runtime, db: Database
) -> None:
    planned = await _request(runtime, status="in_progress")
    access = await _request(runtime, kind="data_request", status="received")
    finished = await _request(runtime, status="done")
    elsewhere = await _request(runtime, shop=OTHER, status="in_progress")
    pending = await _erasure(runtime, planned)
    verified = await _erasure(runtime, finished, state="verified")
    other_erasure = await _erasure(runtime, elsewhere, shop=OTHER)
    await _merge(runtime)

    assert await merges.apply_received_merges(runtime) == 1

    moved_planned, moved_access, kept_finished, kept_elsewhere = await _rows(
        db, Request, planned, access, finished, elsewhere
    )
    assert (moved_planned.customer_id, moved_planned.merged_from) == (KEPT, [GONE])
    # Planned for the deleted customer: planned again, now for the kept one (who holds its orders).
    assert moved_planned.status == "planning" and moved_planned.next_attempt_at <= utcnow()
    assert (moved_access.customer_id, moved_access.merged_from, moved_access.status) == (
        KEPT,
        [GONE],
        "received",
    )
    # A finished request is the record of what was done to that customer: it stays.
    assert (kept_finished.customer_id, kept_finished.merged_from) == (GONE, None)
    # Another shop's rows keyed by the same id are not this merge's business.
    assert (kept_elsewhere.customer_id, kept_elsewhere.status) == (GONE, "in_progress")

    moved_erasure, done_erasure, foreign_erasure = await _rows(
        db, ShopifyErasure, pending, verified, other_erasure
    )
    assert (moved_erasure.customer_id, moved_erasure.merged_from, moved_erasure.state) == (
        KEPT,
        [GONE],
        "requested",
    )
    assert (done_erasure.customer_id, done_erasure.state) == (GONE, "verified")
    assert foreign_erasure.customer_id == GONE
    # Verification of the moved erasure now names the kept customer.
    async with db.transaction() as session:
        assert await erasures.mark_verified(session, SHOP, KEPT, utcnow()) == 1

    async with db.session() as session:
        (merge,) = (await session.execute(select(CustomerMerge))).scalars()
        entry = (
            await session.execute(select(Evidence).where(Evidence.kind == "customer_merge_applied"))
        ).scalar_one()
        assert (await evidence.verify(session, SHOP)).ok
    assert merge.state == "applied" and merge.applied_at is not None
    assert merge.moved == {"requests": 2, "shopify_erasures": 1, "legal_holds": 0}
    assert entry.payload["moved"] == merge.moved and entry.payload["status"] == "completed"
    assert str(GONE) not in json.dumps(entry.payload)  # the ids only in the identifier part
    assert entry.identifiers == {"subject": {"kept_customer_id": KEPT, "deleted_customer_id": GONE}}
    # Applied once: the next tick has nothing to do.
    assert await merges.apply_received_merges(runtime) == 0


@pytest.mark.parametrize("status", ["failed", "in_progress", "requested"])
async def test_a_merge_that_did_not_complete_changes_nothing_but_is_recorded(
    runtime: Runtime, db: Database, status: str
) -> None:
    planned = await _request(runtime, status="in_progress")
    pending = await _erasure(runtime, planned)
    await _merge(runtime, status=status)

    assert await merges.apply_received_merges(runtime) == 1

    (request,) = await _rows(db, Request, planned)
    (erasure,) = await _rows(db, ShopifyErasure, pending)
    assert (request.customer_id, request.merged_from, request.status) == (GONE, None, "in_progress")
    assert (erasure.customer_id, erasure.merged_from) == (GONE, None)
    async with db.session() as session:
        (merge,) = (await session.execute(select(CustomerMerge))).scalars()
        entry = (
            await session.execute(select(Evidence).where(Evidence.kind == "customer_merge_ignored"))
        ).scalar_one()
        kinds = set((await session.execute(select(Evidence.kind))).scalars())
    assert (merge.state, merge.moved) == ("ignored", None)
    assert entry.payload["status"] == status and "customer_merge_applied" not in kinds


async def test_a_merge_waits_while_a_worker_holds_a_request_it_would_move(
    runtime: Runtime, db: Database
) -> None:
    leased = await _request(runtime, status="planning")
    async with db.transaction() as session:
        row = await session.get(Request, leased)
        assert row is not None
        row.lease_owner, row.lease_expires_at = "w1", utcnow() + timedelta(minutes=5)
    await _merge(runtime)

    assert await merges.apply_received_merges(runtime) == 0
    (request,) = await _rows(db, Request, leased)
    assert request.customer_id == GONE
    async with db.session() as session:
        (merge,) = (await session.execute(select(CustomerMerge))).scalars()
    assert merge.state == "received"

    async with db.transaction() as session:  # the worker is done with it
        row = await session.get(Request, leased)
        assert row is not None
        row.lease_owner = row.lease_expires_at = None
    assert await merges.apply_received_merges(runtime) == 1
    (request,) = await _rows(db, Request, leased)
    assert (request.customer_id, request.merged_from) == (KEPT, [GONE])


async def test_webhook_in_merge_applied_by_the_clock(runtime: Runtime, db: Database) -> None:
    planned = await _request(runtime, status="awaiting")
    payload: dict[str, object] = {
        "admin_graphql_api_customer_kept_id": f"gid://shopify/Customer/{KEPT}",
        "admin_graphql_api_customer_deleted_id": f"gid://shopify/Customer/{GONE}",
        "admin_graphql_api_job_id": None,
        "status": "completed",
        "errors": [],
    }
    body = body_of(payload)
    async with serving(create_app(runtime)) as client:
        answer = await client.post(
            "/webhooks/customers/merge", content=body, headers=headers_for("customers/merge", body, shop=SHOP)
        )
    assert answer.status_code == 200
    (job,) = [job for job in JOBS if job.name == "merges"]
    await job.func(runtime)
    (request,) = await _rows(db, Request, planned)
    assert (request.customer_id, request.merged_from, request.status) == (KEPT, [GONE], "planning")


async def test_the_certificate_names_both_customers(runtime: Runtime, db: Database) -> None:
    planned = await _request(runtime, status="in_progress")
    await _merge(runtime)
    await merges.apply_received_merges(runtime)
    (request,) = await _rows(db, Request, planned)
    certificate = build_certificate(request, None, [], None)
    assert certificate["subject"]["customer_id"] == KEPT and certificate["merged_from"] == [GONE]
    english = render_certificate_html(certificate, "en")
    swedish = render_certificate_html(certificate, "sv")
    assert (
        f"Shopify customer {KEPT}" in english and f"merged into this one after the request) {GONE}" in english
    )
    assert f"Shopify-kund {KEPT}" in swedish and str(GONE) in swedish
    # A request that never merged says nothing about merging.
    unmerged = await _request(runtime, customer=KEPT, status="in_progress")
    (plain,) = await _rows(db, Request, unmerged)
    assert "merged" not in render_certificate_html(build_certificate(plain, None, [], None), "en")


def test_rekeying_is_one_list_of_tables() -> None:
    """Anything else keyed by a customer id joins the merge by one entry here."""
    assert [table.name for table in merges.REKEYED] == ["requests", "shopify_erasures", "legal_holds"]


async def test_an_open_request_and_an_active_hold_follow_the_kept_customer(
    runtime: Runtime, db: Database
) -> None:
    open_request = await _request(runtime, status="received")
    async with runtime.db.transaction() as session:
        active = await legal_holds.place(
            session, runtime.vault, SHOP, customer_id=GONE, email=None, reason="tax audit", placed_by="cli"
        )
        ended = await legal_holds.place(
            session, runtime.vault, SHOP, customer_id=GONE, email=None, reason="old dispute", placed_by="cli"
        )
        ended.released_at = utcnow()
        elsewhere = await legal_holds.place(
            session, runtime.vault, OTHER, customer_id=GONE, email=None, reason="other shop", placed_by="cli"
        )
        ids = (active.id, ended.id, elsewhere.id)
    await _merge(runtime)

    assert await merges.apply_received_merges(runtime) == 1

    (moved_request,) = await _rows(db, Request, open_request)
    assert (moved_request.customer_id, moved_request.merged_from) == (KEPT, [GONE])
    moved_hold, released_hold, foreign_hold = await _rows(db, LegalHold, *ids)
    assert moved_hold.customer_id == KEPT
    # A released hold is the record of the past, and another shop's hold is not this merge's.
    assert (released_hold.customer_id, foreign_hold.customer_id) == (GONE, GONE)
    async with db.session() as session:
        held = await legal_holds.holds_for_subject(session, runtime.vault, SHOP, KEPT, None)
        (merge,) = (await session.execute(select(CustomerMerge))).scalars()
    # The kept customer's data is now held by the hold placed on the deleted one.
    assert [hold.id for hold in held] == [moved_hold.id]
    assert merge.moved == {"requests": 1, "shopify_erasures": 0, "legal_holds": 1}


async def test_a_shopify_lookup_waiting_on_the_merged_away_customer_is_settled_as_not_verifiable(
    runtime: Runtime, db: Database
) -> None:
    """After the merge Shopify has no customer by the deleted id, erased or not: a look-up by it
    would read as "verified gone", so it is settled as not verifiable instead."""
    request_id = await _request(runtime, status="verifying")
    async with runtime.db.transaction() as session:
        step = Step(
            request_id=request_id,
            shop_domain=SHOP,
            key=f"shopify:erase:customer:{GONE}",
            system="shopify",
            action="erase",
            category="customer_account",
            holding_ref=f"customer:{GONE}",
            decision={},
            state="verifying",
            outcome="erase_requested",
            verification="pending",
            verify_after=utcnow() + timedelta(days=10),
            next_attempt_at=utcnow() + timedelta(days=10),
        )
        session.add(step)
        await session.flush()
        step_id = step.id
    await _merge(runtime)

    assert await merges.apply_received_merges(runtime) == 1

    (settled,) = await _rows(db, Step, step_id)
    assert (settled.state, settled.verification) == ("done", "not_verifiable")
    assert settled.verification_detail == merges.MERGED_AWAY
    (request,) = await _rows(db, Request, request_id)
    assert request.status == "finalizing" and request.customer_id == GONE  # the record of the past
    async with db.session() as session:
        applied = (
            await session.execute(select(Evidence).where(Evidence.kind == "customer_merge_applied"))
        ).scalar_one()
        kinds = [e.kind for e in await evidence.entries(session, SHOP)]
    assert applied.payload["lookups_settled"] == 1 and "step_not_verifiable" in kinds
