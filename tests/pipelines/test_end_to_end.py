"""End to end: a signed customers/redact webhook in, a certificate of erasure out. Shopify is the
stateful Shopify fake (schema-validated GraphQL), Klaviyo and Mailchimp are respx fakes on the same
router, PostNord gets its erasure request by e-mail through a local SMTP sink. The calls each
provider received are asserted, and the shop owner then confirms PostNord's answer.

The shop's newsletter rules (MK-1) keep a suppression entry for three years, also against an
erasure request, and remove the profile: so the newsletter holdings are reduced, not erased, and
the certificate says so."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from adapters.mailchimp import subscriber_hash
from plugin import evidence
from plugin.app import create_app
from plugin.cli.simulate import build_payload, signed_request
from plugin.clocks import JOBS
from plugin.connections import configure
from plugin.crypto import Vault
from plugin.db import Database
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor.actions import confirm_step
from plugin.models import Request, Shop, Step, shop_cell
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings, serving
from tests.executor.conftest import Clock, after_shopify_erasure, fast_config
from tests.fakes.klaviyo import KlaviyoFake
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.smtp import SmtpSink

SHOP = "e2e-shop.myshopify.com"
EMAIL = "anna@example.se"
CUSTOMER = 191167
ORDER = 299938


async def test_signed_webhook_in_certificate_out(sqlite_db: Database, shopify_fake: Any) -> None:
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token="shpat_e2e")
    shopify_fake.add_customer(SHOP, CUSTOMER, email=EMAIL, phone="+46701234567", email_marketing="SUBSCRIBED")
    shopify_fake.add_order(
        SHOP,
        ORDER,
        customer_id=CUSTOMER,
        created_at=datetime.now(UTC) - timedelta(days=5 * 365),
        fulfillments=[
            {
                "id": 1,
                "delivered_at": datetime.now(UTC) - timedelta(days=5 * 365 - 5),
                "tracking": [{"company": "PostNord", "number": "RR123456789SE", "url": None}],
            }
        ],
    )
    klaviyo = KlaviyoFake(router=shopify_fake.router)
    profile = klaviyo.add_profile(EMAIL)
    mailchimp = MailchimpFake(router=shopify_fake.router)
    mailchimp.add_member("list1", EMAIL)

    with SmtpSink() as sink:
        settings = make_settings(sqlite_db.url, **sink.settings())
        async with httpx.AsyncClient(timeout=5.0) as http:
            runtime = Runtime(settings=settings, db=sqlite_db, vault=Vault(TEST_ENCRYPTION_KEY), http=http)
            async with sqlite_db.transaction() as session:
                session.add(
                    Shop(
                        domain=SHOP,
                        name="E2E",
                        country="SE",
                        timezone="Europe/Stockholm",
                        access_token_enc=runtime.vault.encrypt(
                            "shpat_e2e", shop_cell("access_token_enc", SHOP)
                        ),
                        contact_email_enc=runtime.vault.encrypt(
                            "owner@example.com", shop_cell("contact_email_enc", SHOP)
                        ),
                    )
                )
                await configure(runtime, session, SHOP, "klaviyo", {"api_key": klaviyo.api_key})
                await configure(runtime, session, SHOP, "mailchimp", {"api_key": mailchimp.api_key})
                await configure(runtime, session, SHOP, "postnord", {})

            # A signed webhook, as Shopify sends it.
            body = json.dumps(
                build_payload("customers/redact", SHOP, CUSTOMER, EMAIL, None, [ORDER])
            ).encode()
            headers = signed_request(settings, "customers/redact", body, SHOP)
            async with serving(create_app(runtime), base_url="http://gallra") as client:
                answer = await client.post("/webhooks/customers/redact", content=body, headers=headers)
            assert answer.status_code == 200

            clock = Clock()
            worker = Worker(runtime, fast_config(clock=clock), LiveSources(runtime))
            await worker.drain(limit=60)
            for job in JOBS:  # the outbox delivers the PostNord e-mail on its clock
                if job.name == "outbox":
                    await job.func(runtime)

            async with sqlite_db.session() as session:
                request = (await session.execute(select(Request))).scalar_one()
                steps = {
                    s.key: s
                    for s in (
                        await session.execute(select(Step).where(Step.request_id == request.id))
                    ).scalars()
                }
            assert request.status == "awaiting", {k: (s.state, s.last_error) for k, s in steps.items()}
            carrier = next(s for s in steps.values() if s.system == "postnord")
            assert carrier.state == "awaiting_confirmation"

            # The newsletter holdings were reduced: the plan said so, and no step erased them.
            newsletter = {s.system: s for s in steps.values() if s.category == "newsletter"}
            assert {name: s.action for name, s in newsletter.items()} == {
                "klaviyo": "reduce",
                "mailchimp": "reduce",
                "shopify": "reduce",
            }
            assert {s.decision["rule_id"] for s in newsletter.values()} == {"MK-1-SUPPRESSION"}
            # The providers got exactly the calls reduce makes. Klaviyo: the address suppressed,
            # then the profile deleted by id (Klaviyo keeps the contact record).
            assert klaviyo.suppressed == {EMAIL}
            assert klaviyo.deletion_jobs == [{"id": profile}] and profile not in klaviyo.profiles
            assert klaviyo.count("POST", "/profile-suppression-bulk-create-jobs") == 1
            # Mailchimp: deleted permanently (it then blocks re-import), never archived.
            assert mailchimp.forgotten == {("list1", subscriber_hash(EMAIL))}
            assert mailchimp.archived == set() and mailchimp.count("PATCH") == 0
            # Shopify: marketing consent unsubscribed; the customer record itself goes by the
            # customer data erasure the account step asked for.
            mutations = [name for _, name, _ in shopify_fake.mutations]
            assert "customerEmailMarketingConsentUpdate" in mutations
            assert mutations.count("customerRequestDataErasure") == 1
            assert len(sink.messages) == 1 and "RR123456789SE" in sink.messages[0].get_content()

            async with sqlite_db.transaction() as session:
                await confirm_step(session, SHOP, carrier.id, "PostNord confirmed", vault=runtime.vault)
            await worker.drain(limit=30)
            async with sqlite_db.session() as session:
                # Shopify's customer data erasure is still to be seen taking effect.
                assert (await session.execute(select(Request.status))).scalar_one() == "verifying"
            await after_shopify_erasure(worker, clock, shopify_fake, SHOP)

            async with sqlite_db.session() as session:
                request = (await session.execute(select(Request))).scalar_one()
                docs = {a.kind: a for a in await artifacts_of(session, SHOP, request.id)}
                found = await read_artifact(session, runtime.vault, SHOP, docs["certificate_json"].id)
                chain = await evidence.verify(session, SHOP)
    assert request.status == "done"
    # Gallra's own copy of the e-mail is kept encrypted until its rule ends (a held step re-plans it).
    assert request.email_enc is not None and EMAIL not in request.email_enc
    assert found is not None
    certificate = json.loads(found[1])
    done = {(d["system"], d["outcome"]) for d in certificate["done"]}
    assert ("postnord", "confirmed") in done
    assert not {system for system, _ in done} & {"klaviyo", "mailchimp"}  # reduced, not erased
    reduced = {r["system"]: r for r in certificate["reduced"]}
    fields = ["activity_history", "address", "name", "phone", "profile_properties"]
    until = reduced["klaviyo"]["keep_until"]
    # The suppression entry is kept three years from the request (the opt-out), by MK-1-SUPPRESSION.
    assert date.fromisoformat(until).year == datetime.now(UTC).year + 3
    for system in ("klaviyo", "mailchimp"):
        entry = reduced[system]
        assert (entry["outcome"], entry["rule_id"], entry["keep_until"]) == (
            "reduced",
            "MK-1-SUPPRESSION",
            until,
        )
        assert entry["removed"] == fields and entry["still_held"] == []
    # Shopify's consent holding only stops the marketing; the fields are the customer account's.
    assert (reduced["shopify"]["outcome"], reduced["shopify"]["removed"]) == ("suppressed", [])
    html = await _certificate_html(sqlite_db, runtime.vault, docs["certificate_html"].id)
    assert until in html and "MK-1-SUPPRESSION" in html
    assert any(k["system"] == "shopify" and k["category"] == "accounting_record" for k in certificate["kept"])
    assert any(k["system"] == "gallra" and k["keep_until"] for k in certificate["kept"])
    assert EMAIL not in found[1]
    assert chain.ok


async def _certificate_html(db: Database, vault: Vault, artifact_id: int) -> str:
    async with db.session() as session:
        found = await read_artifact(session, vault, SHOP, artifact_id)
    assert found is not None
    return found[1]
