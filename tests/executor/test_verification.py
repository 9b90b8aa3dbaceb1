"""Verified erasure: after each erase or reduce the executor asks the adapter's own `find` again
and records what it saw (plugin/executor/verify.py). An erasure the provider silently ignores is
caught and retried, then fails visibly; Klaviyo's deletion job and Shopify's customer data
erasure are looked at after their delays (the worker's clock moved on, not slept); the e-mail
channel is not verifiable and says who confirmed when; the certificate carries it all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from adapters.base import Outcome, Result
from adapters.gallra import Gallra
from plugin import evidence
from plugin.admin.queries import open_requests
from plugin.connections import configure
from plugin.documents.certificate import build_certificate, render_certificate_html
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor.actions import confirm_step
from plugin.executor.verify import CANNOT_FIND
from plugin.holdings import Holding, Subject
from plugin.models import Evidence, Request, Shop, shop_cell
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.shopify import erasures
from tests.executor.conftest import Clock, fast_config
from tests.executor.doubles import (
    SHOP,
    CarrierByEmail,
    FakeSources,
    Ledger,
    RecordingAdapter,
    add_request,
    add_shop,
    newsletter_holding,
    order,
    request_row,
    steps_of,
)
from tests.fakes.klaviyo import KlaviyoFake

EMAIL = "anna@example.se"
CUSTOMER = 191167
ORDER = 299938


async def evidence_of(runtime: Runtime, request_id: int) -> list[Evidence]:
    async with runtime.db.session() as session:
        rows = await session.execute(
            select(Evidence).where(Evidence.request_id == request_id).order_by(Evidence.seq)
        )
        return list(rows.scalars())


async def evidence_kinds(runtime: Runtime, request_id: int) -> list[str]:
    return [entry.kind for entry in await evidence_of(runtime, request_id)]


async def drain_until(worker: Worker, runtime: Runtime, request_id: int, states: set[str]) -> Request:
    """Drain until the request reaches one of `states` (retries are due within fractions of a
    second with the test's backoff)."""
    for _ in range(40):
        await worker.drain(limit=30, settle=0.3)
        request = await request_row(runtime, request_id)
        if request.status in states:
            return request
    return await request_row(runtime, request_id)


async def test_a_silently_ignored_erasure_is_caught_and_retried(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    """The provider answers "erased" but keeps the profile: the look-up afterwards finds it, the
    step is retried; once the provider really erases, it is verified gone."""
    sources.holdings["newsletter"] = [newsletter_holding("profile:1")]
    ledger.ignored.add("profile:1")
    # Retries a second apart, so the first drain ends before the next attempt is due.
    worker = Worker(runtime, fast_config(backoff_base=2.0, backoff_cap=2.0), sources)
    request_id = await add_request(runtime)
    await worker.drain(limit=30)
    step = (await steps_of(runtime, request_id))["newsletter:erase:profile:1"]
    assert step.verification == "still_present"
    assert step.state in ("pending", "running") and step.outcome == "erased"
    assert step.last_error == "newsletter: still found after the erasure was reported done"
    assert "step_still_present" in await evidence_kinds(runtime, request_id)

    ledger.ignored.clear()  # the provider now really erases
    request = await drain_until(worker, runtime, request_id, {"done", "failed"})
    step = (await steps_of(runtime, request_id))["newsletter:erase:profile:1"]
    assert request.status == "done"
    assert (step.state, step.verification) == ("done", "verified_absent")
    assert step.verified_at is not None and step.last_error is None
    assert step.verification_detail == "looked up again with the provider's search for the subject"
    assert ledger.erasures("newsletter")["profile:1"] >= 2


async def test_an_erasure_that_never_takes_effect_fails_visibly(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding("profile:1")]
    ledger.ignored.add("profile:1")
    request_id = await add_request(runtime)
    request = await drain_until(worker, runtime, request_id, {"failed", "done"})
    step = (await steps_of(runtime, request_id))["newsletter:erase:profile:1"]
    assert request.status == "failed"
    assert (step.state, step.verification, step.outcome) == ("failed", "still_present", "erased")
    assert step.attempts == step.max_attempts
    assert ledger.erasures("newsletter") == {"profile:1": step.max_attempts}
    assert step.last_error == "newsletter: still found after the erasure was reported done"
    kinds = await evidence_kinds(runtime, request_id)
    assert kinds.count("step_still_present") == step.max_attempts
    assert "step_failed" in kinds and kinds[-1] == "request_failed"


async def test_email_channel_is_not_verifiable_and_names_who_confirmed_when(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.enabled = [RecordingAdapter, CarrierByEmail]
    sources.orders[9] = order(9, tracking="RR1SE", created=datetime(2020, 3, 1, tzinfo=UTC))
    sources.holdings["newsletter"] = [newsletter_holding("profile:1")]
    request_id = await add_request(runtime, orders=[9])
    await worker.drain(limit=30)
    steps = await steps_of(runtime, request_id)
    carrier = next(s for s in steps.values() if s.system == "postnord")
    assert carrier.state == "awaiting_confirmation" and carrier.verification is None

    async with runtime.db.transaction() as session:
        await confirm_step(session, SHOP, carrier.id, "Karin at PostNord, by e-mail", vault=runtime.vault)
    await worker.drain(limit=30)
    steps = await steps_of(runtime, request_id)
    carrier = steps[carrier.key]
    assert (carrier.state, carrier.verification) == ("done", "not_verifiable")
    assert carrier.verified_at == carrier.finished_at
    detail = carrier.verification_detail or ""
    assert detail.startswith(
        "the processor confirmed in answer to Gallra's e-mail; recorded by the shop owner"
    )
    assert "Karin" not in detail  # the note names a person: it stays encrypted with the e-mail

    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        assert request is not None
        certificate = build_certificate(request, shop, list(steps.values()), None)
    systems = {s["system"]: s for s in certificate["verification"]["systems"]}
    assert systems["postnord"]["state"] == "not_verifiable"
    assert systems["postnord"]["at"] == carrier.verified_at.isoformat()  # type: ignore[union-attr]
    assert systems["newsletter"]["state"] == "verified_absent"
    assert certificate["verification"]["verified"] is False  # PostNord's could not be seen
    html = render_certificate_html(certificate, "en")
    assert "<th>Verification</th>" in html and "not verifiable" in html
    assert "Not verified in every system" in html


async def test_a_provider_that_cannot_look_up_is_said_plainly(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    class CarrierApi(CarrierByEmail):
        """A carrier that cancels by tracking number but has no look-up."""

        channel = "api"

        async def erase(self, subject: Subject, holding: Holding) -> Result:
            self.ledger.calls.append((self.name, "erase", holding.ref))
            return Result(Outcome.ERASED, provider_ref="cancel-1")

    sources.enabled = [CarrierApi]
    sources.orders[9] = order(9, tracking="RR1SE", created=datetime(2020, 3, 1, tzinfo=UTC))
    request_id = await add_request(runtime, orders=[9])
    await worker.drain(limit=30)
    (step,) = [s for s in (await steps_of(runtime, request_id)).values() if s.system == "postnord"]
    assert (step.state, step.verification) == ("done", "not_verifiable")
    assert step.verification_detail == CANNOT_FIND
    assert ledger.count("find", "postnord") == {}  # never asked


async def _live_shop(runtime: Runtime, shopify_fake: Any) -> KlaviyoFake:
    """A shop with a Shopify token and Klaviyo connected; a customer with one old order (kept for
    bookkeeping, its contact details erased with the customer) and a Klaviyo profile."""
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token="shpat_v")
    shopify_fake.add_customer(SHOP, CUSTOMER, email=EMAIL)
    shopify_fake.add_order(
        SHOP, ORDER, customer_id=CUSTOMER, email=EMAIL, created_at=datetime.now(UTC) - timedelta(days=400)
    )
    klaviyo = KlaviyoFake(router=shopify_fake.router)
    klaviyo.add_profile(EMAIL)
    klaviyo.delete_immediately = False  # Klaviyo's deletion job runs later
    await add_shop(runtime)
    async with runtime.db.transaction() as session:
        token = runtime.vault.encrypt("shpat_v", shop_cell("access_token_enc", SHOP))
        await session.execute(update(Shop).where(Shop.domain == SHOP).values(access_token_enc=token))
        await configure(runtime, session, SHOP, "klaviyo", {"api_key": klaviyo.api_key})
    return klaviyo


async def test_klaviyo_and_shopify_erasures_verified_after_their_delays(
    runtime: Runtime, shopify_fake: Any
) -> None:
    klaviyo = await _live_shop(runtime, shopify_fake)
    clock = Clock()
    worker = Worker(runtime, fast_config(clock=clock), LiveSources(runtime))
    request_id = await add_request(runtime, email=EMAIL, orders=[ORDER], customer_id=CUSTOMER)
    await worker.drain(limit=60)
    start = clock()

    steps = await steps_of(runtime, request_id)
    request = await request_row(runtime, request_id)
    assert request.status == "verifying", {k: (s.state, s.last_error) for k, s in steps.items()}
    newsletter = next(s for s in steps.values() if s.system == "klaviyo")
    account = steps[f"shopify:erase:customer:{CUSTOMER}"]
    contact = steps[f"shopify:erase:order:{ORDER}:contact"]
    assert (newsletter.state, newsletter.verification) == ("verifying", "pending")
    assert newsletter.outcome in ("reduced", "erase_requested")
    assert newsletter.verify_after is not None
    assert timedelta(minutes=59) < newsletter.verify_after - start < timedelta(hours=1, minutes=1)
    assert (account.state, account.outcome) == ("verifying", "erase_requested")
    assert account.verification == "pending"
    assert account.verify_after is not None
    assert timedelta(days=9, hours=23) < account.verify_after - start < timedelta(days=10, hours=1)
    assert (contact.state, contact.verification_detail) == ("verifying", f"verified with step {account.key}")
    assert [name for _, name, _ in shopify_fake.mutations].count("customerRequestDataErasure") == 1

    # An hour on, Klaviyo's job has not run yet: looked at again later, not yet "still present".
    clock.advance(timedelta(hours=1, minutes=1))
    await worker.drain(limit=30)
    newsletter = (await steps_of(runtime, request_id))[newsletter.key]
    assert (newsletter.state, newsletter.verification) == ("verifying", "pending")
    assert len(klaviyo.deletion_jobs) == 1  # not erased again while within its window

    klaviyo.complete_deletions()
    clock.advance(timedelta(hours=6, minutes=1))
    await worker.drain(limit=30)
    newsletter = (await steps_of(runtime, request_id))[newsletter.key]
    assert (newsletter.state, newsletter.verification) == ("done", "verified_absent")
    assert newsletter.verification_detail is not None and "Klaviyo" in newsletter.verification_detail
    assert (await request_row(runtime, request_id)).status == "verifying"  # Shopify's is still to come

    # Ten days on Shopify has not carried out its erasure (the customer ordered recently): the
    # customer is still found, so it is looked at again 14 days later; and again after that.
    clock.advance(timedelta(days=10))
    await worker.drain(limit=30)
    account = (await steps_of(runtime, request_id))[account.key]
    assert (account.state, account.verification) == ("verifying", "pending")
    for _ in range(2):
        clock.advance(timedelta(days=14, minutes=1))
        await worker.drain(limit=30)

    # Past the legal deadline now, but every erasure call was made in time: not overdue.
    now = clock()
    request = await request_row(runtime, request_id)
    assert request.status == "verifying" and request.due_at < now
    async with runtime.db.session() as session:
        (row,) = [r for r in await open_requests(session, SHOP, now) if r.id == request_id]
    assert row.status == "verifying" and row.overdue is False

    assert shopify_fake.carry_out_erasures(SHOP, all_pending=True) == [CUSTOMER]
    clock.advance(timedelta(days=14, minutes=1))
    await worker.drain(limit=30, settle=0.3)
    steps = await steps_of(runtime, request_id)
    account, contact = steps[account.key], steps[contact.key]
    assert (account.state, account.verification) == ("done", "verified_absent")
    assert account.verification_detail == "Shopify's Admin API no longer finds the customer by its id"
    assert (contact.state, contact.verification) == ("done", "verified_absent")
    assert contact.verified_at == account.verified_at
    assert [name for _, name, _ in shopify_fake.mutations].count("customerRequestDataErasure") == 1

    request = await request_row(runtime, request_id)
    assert request.status == "done"
    async with runtime.db.session() as session:
        # The erasure Gallra tracks for Shopify's lifecycle (cancel window, admin page) is verified too.
        (tracked,) = await erasures.erasures(session, SHOP)
        assert (tracked.customer_id, tracked.step_id, tracked.state) == (CUSTOMER, account.id, "verified")
        assert tracked.verified_at == account.verified_at
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        as_json = await read_artifact(session, runtime.vault, SHOP, docs["certificate_json"].id)
        as_html = await read_artifact(session, runtime.vault, SHOP, docs["certificate_html"].id)
        chain = await evidence.verify(session, SHOP)
    assert as_json is not None and as_html is not None and chain.ok
    certificate = json.loads(as_json[1])
    assert certificate["verification"]["verified"] is True
    systems = {s["system"]: s for s in certificate["verification"]["systems"]}
    # Gallra's own copy of the request came to the end of its rule meanwhile and went at the end.
    assert set(systems) == {"gallra", "klaviyo", "shopify"}
    assert systems["gallra"]["how"] == Gallra.verification.how  # its own look-up, like any system
    assert all(s["state"] == "verified_absent" and s["at"] for s in systems.values())
    assert systems["shopify"]["at"] == account.verified_at.isoformat()  # type: ignore[union-attr]
    erased = [e for e in (*certificate["done"], *certificate["reduced"]) if e["action"] != "keep"]
    assert erased and all(e["verification"]["state"] == "verified_absent" for e in erased)
    html = as_html[1]
    assert "<th>Kontroll</th>" in html and "borta (kontrollerat)" in html  # the shop's language
    assert "Kontrollerat: varje system" in html
    assert EMAIL not in as_json[1] and EMAIL not in html
    kinds = await evidence_kinds(runtime, request_id)
    # Klaviyo, the customer and the order it covers, and Gallra's own step (its own look-up).
    assert kinds.count("step_verified_absent") == 4 and "step_verifying" in kinds
    (issued,) = [e for e in await evidence_of(runtime, request_id) if e.kind == "certificate_issued"]
    assert issued.payload["verified"] is True
