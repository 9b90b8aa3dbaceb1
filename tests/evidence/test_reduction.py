"""What evidence and the ledger keep of a person: after shop/redact no identifier is left in any
evidence row (searched raw), and a finished request drops its subject's data after the policy's
period (claimed once by the daily clock) while its certificate still renders and verifies."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import select, text

from plugin import evidence
from plugin.admin.actions import verify_evidence
from plugin.clocks import minimise_requests
from plugin.documents.certificate import certificate_document
from plugin.holdings import Category, Holding
from plugin.ledger import NewRequest, insert_request
from plugin.models import ClockClaim, Delivery, Request, Shop, Step, delivery_cell, utcnow
from plugin.pipelines.shop_redact import SHOP_REDACT_DELAY
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.doubles import SHOP, FakeSources, uninstall_shop

EMAIL = "anna.identifier@example.se"
CUSTOMER_ID = 4711001
PROFILE_ID = "01HZKLAVIYOPROFILE42"
TRACKING = "00370712345678901234"
MEMBER_MD5 = hashlib.md5(EMAIL.encode(), usedforsecurity=False).hexdigest()


def _holdings() -> list[Holding]:
    return [
        Holding("newsletter", Category.NEWSLETTER, f"profile:{PROFILE_ID}", f"Klaviyo profile {PROFILE_ID}"),
        Holding("newsletter", Category.NEWSLETTER, f"member:list1:{MEMBER_MD5}", "Mailchimp member in list1"),
        Holding(
            "newsletter", Category.SHIPMENT, f"shipment:1001:{TRACKING}", f"Shipment {TRACKING} of #1001"
        ),
    ]


async def _redact_request(runtime: Runtime) -> int:
    async with runtime.db.transaction() as session:
        new = NewRequest(
            kind="customer_redact",
            shop_domain=SHOP,
            business_key=f"customer:{CUSTOMER_ID}|orders:1001",
            customer_id=CUSTOMER_ID,
            email=EMAIL,
            order_ids=[1001],
        )
        request_id = await insert_request(session, runtime.vault, new)
        assert request_id is not None
        session.add(Delivery(shop_domain=SHOP, topic="customers/redact", body_enc="x", request_id=request_id))
    return request_id


async def _raw(runtime: Runtime, request_id: int | None = None) -> str:
    """Every column of the shop's evidence rows (or one request's), as the database holds them."""
    sql = "SELECT * FROM evidence WHERE shop_domain = :shop"
    params: dict[str, object] = {"shop": SHOP}
    if request_id is not None:
        sql += " AND request_id = :rid"
        params["rid"] = request_id
    async with runtime.db.session() as session:
        return str((await session.execute(text(sql), params)).all())


def _identifiers(runtime: Runtime) -> list[str]:
    email_hash = runtime.vault.email_hash(SHOP, EMAIL)
    assert email_hash is not None
    return [str(CUSTOMER_ID), PROFILE_ID, TRACKING, MEMBER_MD5, email_hash, EMAIL]


async def test_after_shop_redact_no_identifier_is_left_in_evidence(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    sources.holdings["newsletter"] = _holdings()
    await _redact_request(runtime)
    await worker.drain(limit=20)
    before = await _raw(runtime)
    # The search finds them while they are there (the identifier part, not yet reduced).
    assert all(value in before for value in _identifiers(runtime)[:5])

    await uninstall_shop(runtime, utcnow() - SHOP_REDACT_DELAY - timedelta(minutes=1))
    async with runtime.db.transaction() as session:
        new = NewRequest(kind="shop_redact", shop_domain=SHOP, business_key="shop:1")
        assert await insert_request(session, runtime.vault, new) is not None
    await worker.drain(limit=20)

    after = await _raw(runtime)
    leaked = [value for value in _identifiers(runtime) if value.lower() in after.lower()]
    assert leaked == []
    async with runtime.db.session() as session:
        result = await verify_evidence(session, SHOP)
        kinds = {r.kind for r in await evidence.entries(session, SHOP)}
    assert result.ok, result.reason
    assert {"step_done", "shop_redacted"} <= kinds


async def test_finished_requests_drop_subject_data_after_the_policy_period(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    sources.holdings["newsletter"] = _holdings()
    request_id = await _redact_request(runtime)
    await worker.drain(limit=20)
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.status == "done" and request.completed_at is not None
        completed = request.completed_at
        certificate_before = await certificate_document(session, runtime.vault, request, "en")
    assert certificate_before is not None

    # Within the default period (3 years) nothing changes.
    assert await minimise_requests(runtime, now=completed + timedelta(days=3 * 365 - 2)) == 0
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.minimised_at is None
        assert request.order_ids == [1001] and str(CUSTOMER_ID) in request.business_key

    after = completed + timedelta(days=3 * 365 + 2)
    assert await minimise_requests(runtime, now=after) == 1
    # The day's run is claimed once: a second instance's clock firing the same day does nothing.
    assert await minimise_requests(runtime, now=after + timedelta(minutes=5)) == 0

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        steps = list((await session.execute(select(Step).where(Step.request_id == request_id))).scalars())
        body = (
            await session.execute(select(Delivery.body_enc).where(Delivery.request_id == request_id))
        ).scalar_one()
        certificate = await certificate_document(session, runtime.vault, request, "en")
        result = await verify_evidence(session, SHOP)
        claims = list((await session.execute(select(ClockClaim.key))).scalars())
    assert (request.email_enc, request.phone_enc, request.order_ids) == (None, None, [])
    assert str(CUSTOMER_ID) not in request.business_key and request.minimised_at is not None
    # What the certificate names the subject by stays.
    assert request.email_hash == runtime.vault.email_hash(SHOP, EMAIL) and request.customer_id == CUSTOMER_ID
    assert runtime.vault.decrypt(body, delivery_cell(SHOP)) == '{"redacted": true}'
    step_text = str([(s.key, s.holding_ref, s.provider_ref, s.decision) for s in steps])
    assert all(value not in step_text for value in (PROFILE_ID, TRACKING, MEMBER_MD5))
    raw = await _raw(runtime, request_id)
    assert all(value not in raw for value in (PROFILE_ID, TRACKING, MEMBER_MD5, EMAIL))
    # The certificate renders from its stored JSON as before and its anchor still verifies.
    assert certificate == certificate_before
    assert result.ok and result.anchors == 1, result.reason
    assert sum(key.startswith("minimise:") for key in claims) == 2  # one per day it ran


async def test_the_shop_policy_sets_the_minimisation_period(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.policy_toml = 'preset = "SE"\nminimise_requests_after = "1y"\n'
    request_id = await _redact_request(runtime)
    await worker.drain(limit=20)
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.completed_at is not None
        completed = request.completed_at
    assert await minimise_requests(runtime, now=completed + timedelta(days=367)) == 1


async def test_a_stored_policy_that_cannot_be_used_minimises_nothing_of_the_shop(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    """`plugin.retention.shop_policy`'s failure rule: nothing is done by a policy the shop did not
    set, so the requests keep their data until the owner saves a policy again."""
    request_id = await _redact_request(runtime)
    await worker.drain(limit=20)
    async with runtime.db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.completed_at is not None
        completed = request.completed_at
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.policy_toml = 'preset = "SE"\n\n[overrides.NO-SUCH-RULE]\nperiod = "1y"\n'
    later = completed + timedelta(days=4 * 366)
    assert await minimise_requests(runtime, now=later) == 0
    async with runtime.db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.minimised_at is None
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.policy_toml = None
    assert await minimise_requests(runtime, now=later + timedelta(days=1)) == 1
