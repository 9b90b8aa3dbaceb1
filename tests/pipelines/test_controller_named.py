"""The controller, named everywhere: a shop registered with `shop add` (details from the Shopify
fake), a signed customers/redact, PostNord asked by e-mail through a local SMTP sink. The e-mail
introduces the shop by its name and legal name and its Reply-To is the shop's contact address; the
certificate and the register extract name the controller field by field, and say "not known"
where Gallra does not know a field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from plugin import controller
from plugin.app import create_app
from plugin.cli.simulate import build_payload, signed_request
from plugin.connections import configure
from plugin.crypto import Vault
from plugin.db import Database
from plugin.documents.extract import build_extract, render_extract_html
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor.actions import confirm_step
from plugin.models import Request, Shop, Step
from plugin.outbox import deliver_queued
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.shopify.tokens import register_shop
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings, serving
from tests.executor.conftest import Clock, after_shopify_erasure, fast_config
from tests.fakes.smtp import SmtpSink

SHOP = "heldout-demo.myshopify.com"
TOKEN = "shpat_named"
EMAIL = "anna@example.se"
CUSTOMER = 191167
ORDER = 299938
CONTACT = "kontakt@fjallbutiken.se"
EXPECTED = {
    "name": "Fjällbutiken",
    "legal_name": "Fjällbutiken i Åre AB",
    "address": "Storgatan 1, 837 52 Åre, Sweden",
    "contact_email": CONTACT,
    "domain": SHOP,
    "not_known": [],
}


def _shopify(fake: Any) -> None:
    fake.add_shop(
        SHOP,
        token=TOKEN,
        name="Fjällbutiken",
        email=CONTACT,
        company="Fjällbutiken i Åre AB",
        address1="Storgatan 1",
        zip="837 52",
        city="Åre",
    )
    fake.add_customer(SHOP, CUSTOMER, email=EMAIL, phone="+46701234567")
    fake.add_order(
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


async def test_processor_email_and_certificate_name_the_controller(db: Database, shopify_fake: Any) -> None:
    _shopify(shopify_fake)
    with SmtpSink() as sink:
        settings = make_settings(db.url, **sink.settings(), smtp_from="gallra@gallra.example")
        async with httpx.AsyncClient(timeout=5.0) as http:
            runtime = Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http)
            await register_shop(runtime, SHOP, TOKEN, country="SE", timezone="Europe/Stockholm")
            async with db.transaction() as session:
                await configure(runtime, session, SHOP, "postnord", {})

            body = json.dumps(
                build_payload("customers/redact", SHOP, CUSTOMER, EMAIL, None, [ORDER])
            ).encode()
            async with serving(create_app(runtime), base_url="http://gallra") as client:
                answer = await client.post(
                    "/webhooks/customers/redact",
                    content=body,
                    headers=signed_request(settings, "customers/redact", body, SHOP),
                )
            assert answer.status_code == 200
            clock = Clock()
            worker = Worker(runtime, fast_config(clock=clock), LiveSources(runtime))
            await worker.drain(limit=60)
            await deliver_queued(runtime)

            (message,) = sink.messages
            text = message.get_content()
            assert message["Reply-To"] == CONTACT
            assert "Vi är Fjällbutiken (Fjällbutiken i Åre AB, heldout-demo.myshopify.com)." in text
            assert f"Svara till {CONTACT} inom en månad" in text
            assert "Storgatan 1, 837 52 Åre, Sweden" in text  # the sign-off

            async with db.session() as session:
                request = (await session.execute(select(Request))).scalar_one()
                carrier = (
                    await session.execute(
                        select(Step).where(Step.request_id == request.id, Step.system == "postnord")
                    )
                ).scalar_one()
            async with db.transaction() as session:
                await confirm_step(session, SHOP, carrier.id, "PostNord confirmed", vault=runtime.vault)
            await worker.drain(limit=30)
            await after_shopify_erasure(worker, clock, shopify_fake, SHOP)

            async with db.session() as session:
                docs = {a.kind: a for a in await artifacts_of(session, SHOP, request.id)}
                found = await read_artifact(session, runtime.vault, SHOP, docs["certificate_json"].id)
                html = await read_artifact(session, runtime.vault, SHOP, docs["certificate_html"].id)
    assert found is not None and html is not None
    certificate = json.loads(found[1])
    assert certificate["controller"] == EXPECTED
    assert certificate["shop"] == {"domain": SHOP, "name": "Fjällbutiken"}
    # The stored HTML is in the shop's language (Swedish).
    assert "Personuppgiftsansvarig" in html[1] and "Fjällbutiken i Åre AB" in html[1] and CONTACT in html[1]


async def test_no_contact_address_no_request_to_reply_to_the_domain(db: Database, shopify_fake: Any) -> None:
    """Without a contact address the request is not sent (it would ask the carrier to answer
    nobody); the step fails saying how to set one."""
    _shopify(shopify_fake)
    shopify_fake.shops[SHOP].email = ""
    with SmtpSink() as sink:
        settings = make_settings(db.url, **sink.settings(), smtp_from="gallra@gallra.example")
        async with httpx.AsyncClient(timeout=5.0) as http:
            runtime = Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http)
            await register_shop(runtime, SHOP, TOKEN, country="SE")
            async with db.transaction() as session:
                await configure(runtime, session, SHOP, "postnord", {})
            body = json.dumps(
                build_payload("customers/redact", SHOP, CUSTOMER, EMAIL, None, [ORDER])
            ).encode()
            async with serving(create_app(runtime), base_url="http://gallra") as client:
                await client.post(
                    "/webhooks/customers/redact",
                    content=body,
                    headers=signed_request(settings, "customers/redact", body, SHOP),
                )
            await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=60)
            await deliver_queued(runtime)
            async with db.session() as session:
                carrier = (await session.execute(select(Step).where(Step.system == "postnord"))).scalar_one()
    assert sink.messages == []
    assert carrier.state == "failed" and "contact e-mail address is not known" in (carrier.last_error or "")


def _request() -> Request:
    return Request(
        id=3,
        shop_domain=SHOP,
        kind="data_request",
        business_key="data_request:1",
        received_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        due_at=datetime(2026, 4, 1, 9, 30, tzinfo=UTC),
        data_request_id=1,
    )


def test_extract_names_the_controller_field_by_field() -> None:
    vault = Vault(TEST_ENCRYPTION_KEY)
    shop = Shop(domain=SHOP, country="SE")
    controller.apply_platform(
        vault,
        shop,
        controller.Details(
            name="Fjällbutiken",
            legal_name="Fjällbutiken i Åre AB",
            address="Storgatan 1, 837 52 Åre, Sweden",
            contact_email=CONTACT,
        ),
    )
    extract = build_extract(
        _request(),
        shop,
        {},
        [],
        {},
        expires_at=datetime(2026, 3, 9, tzinfo=UTC),
        controller=controller.controller_document(vault, shop, SHOP),
    )
    assert extract["controller"] == EXPECTED
    sv, en = render_extract_html(extract, "sv"), render_extract_html(extract, "en")
    assert "Registerutdrag: Fjällbutiken" in sv and "Juridiskt namn" in sv and "Fjällbutiken i Åre AB" in sv
    assert "Legal name" in en and CONTACT in en and "Storgatan 1, 837 52 Åre, Sweden" in en


def test_unknown_fields_are_said_to_be_unknown() -> None:
    vault = Vault(TEST_ENCRYPTION_KEY)
    shop = Shop(domain=SHOP, name="Fjällbutiken", country="SE")
    extract = build_extract(
        _request(),
        shop,
        {},
        [],
        {},
        expires_at=datetime(2026, 3, 9, tzinfo=UTC),
        controller=controller.controller_document(vault, shop, SHOP),
    )
    assert extract["controller"] == {
        "name": "Fjällbutiken",
        "legal_name": "not known",
        "address": "not known",
        "contact_email": "not known",
        "domain": SHOP,
        "not_known": ["legal_name", "address", "contact_email"],
    }
    assert None not in extract["controller"].values()
    assert "inte känt" in render_extract_html(extract, "sv")
    assert "not known" in render_extract_html(extract, "en")
