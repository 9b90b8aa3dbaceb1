"""A fully connected Swedish test shop, end to end: a signed `customers/data_request` and then a
signed `customers/redact` for the same customer, through intake, the worker with the live sources
and the adapters against their fakes (Shopify's schema-validated fake with a customer and two
orders with line items, a PostNord and a Budbee shipment; Klaviyo and Mailchimp subscriptions;
an SMTP sink for the e-mail channel). The register extract and the certificate of erasure it
produces are what the tests assert and what docs/examples shows.

    .venv/bin/python -m tests.documents.connected_shop docs/examples   # regenerate the examples
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from plugin import evidence
from plugin.app import create_app
from plugin.cli.simulate import build_payload, signed_request
from plugin.clocks import JOBS
from plugin.connections import configure
from plugin.crypto import Vault
from plugin.db import Database
from plugin.documents.certificate import certificate_document
from plugin.documents.store import artifacts_of, read_artifact
from plugin.executor.actions import confirm_step
from plugin.migrate import upgrade
from plugin.models import Request, Shop, Step, shop_cell
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings, serving
from tests.executor.conftest import Clock, after_shopify_erasure, fast_config
from tests.fakes.klaviyo import KlaviyoFake
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.smtp import SmtpSink

SHOP = "connected-demo.myshopify.com"
EMAIL = "anna.svensson@example.se"
PHONE = "+46701234567"
CUSTOMER = 7001
FIRST_ORDER, SECOND_ORDER = 8001, 8002
POSTNORD_TRACKING, BUDBEE_TRACKING = "RR123456785SE", "BB0012345"
BUDBEE_PRIVACY = "privacy@budbee.example"
HOME = {
    "firstName": "Anna",
    "lastName": "Svensson",
    "address1": "Storgatan 1",
    "zip": "111 22",
    "city": "Stockholm",
    "country": "Sweden",
    "countryCodeV2": "SE",
    "phone": PHONE,
}
WORK = {**HOME, "company": "Exempel AB", "address1": "Kungsgatan 10", "zip": "111 43"}
KINDS = {"customers/data_request": "data_request", "customers/redact": "customer_redact"}
BUDBEE_ORDER = {"id": "bb-7f3c", "cart": {"cartId": "1002"}, "status": "DELIVERED"}


@dataclass
class Documents:
    extract: dict[str, Any]
    extract_html: dict[str, str]  # by language
    certificate: dict[str, Any]
    certificate_html: dict[str, str]
    sent: list[str]  # bodies of the e-mails the channel sent (carriers' erasure requests)


def stock(shopify_fake: Any, router: Any) -> tuple[KlaviyoFake, MailchimpFake]:
    """The shop's data at Shopify, Klaviyo, Mailchimp and Budbee."""
    now = datetime.now(UTC)
    shopify_fake.add_shop(SHOP, name="Demo Butik", country="SE", timezone="Europe/Stockholm", token="shpat_c")
    shopify_fake.add_customer(
        SHOP,
        CUSTOMER,
        email=EMAIL,
        phone=PHONE,
        first_name="Anna",
        last_name="Svensson",
        email_marketing="SUBSCRIBED",
        sms_marketing="NOT_SUBSCRIBED",
        email_opt_in_level="CONFIRMED_OPT_IN",
        email_marketing_updated_at=datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
        created_at=datetime(2024, 5, 1, 7, 55, tzinfo=UTC),
        note="Vill ha leverans före kl. 12",
        tags=["stamkund"],
        locale="sv",
        addresses=[HOME, WORK],
    )
    shopify_fake.add_order(
        SHOP,
        FIRST_ORDER,
        name="#1001",
        customer_id=CUSTOMER,
        # Delivered 3.5 years ago: past the carriers' 3 years and 2 months, so PostNord is asked to
        # erase it (by e-mail); the recent Budbee delivery is kept.
        created_at=now - timedelta(days=1300),
        email=EMAIL,
        phone=PHONE,
        note="Paketet får lämnas vid dörren",
        line_items=[
            {"title": "Ullsockor", "variant": "38-40", "sku": "US-38", "quantity": 2, "price": "149.00"},
            {"title": "Mössa", "variant": "Grå", "sku": "MO-G", "quantity": 1, "price": "299.00"},
        ],
        shipping_address=HOME,
        billing_address=HOME,
        shipping_method="PostNord MyPack Collect",
        shipping_price="49.00",
        fulfillments=[
            {
                "id": 1,
                "created_at": now - timedelta(days=1299),
                "delivered_at": now - timedelta(days=1296),
                "tracking": [
                    {
                        "company": "PostNord",
                        "number": POSTNORD_TRACKING,
                        "url": f"https://tracking.postnord.com/se/?id={POSTNORD_TRACKING}",
                    }
                ],
            }
        ],
    )
    shopify_fake.add_order(
        SHOP,
        SECOND_ORDER,
        name="#1002",
        customer_id=CUSTOMER,
        created_at=now - timedelta(days=30),
        email=EMAIL,
        line_items=[{"title": "Halsduk", "sku": "HD-1", "quantity": 1, "price": "399.00"}],
        shipping_address=WORK,
        billing_address=HOME,
        shipping_method="Budbee Hemleverans",
        shipping_price="59.00",
        fulfillments=[
            {
                "id": 2,
                "created_at": now - timedelta(days=29),
                "delivered_at": now - timedelta(days=28),
                "tracking": [{"company": "Budbee", "number": BUDBEE_TRACKING, "url": None}],
            }
        ],
    )
    klaviyo = KlaviyoFake(router=router)
    klaviyo.add_profile(EMAIL, lists=("Nyhetsbrev",))
    mailchimp = MailchimpFake(router=router)
    mailchimp.add_member("list1", EMAIL)
    router.get("https://api.budbee.com/multiple/orders").respond(200, json=[BUDBEE_ORDER])
    # Delivered: nothing left to cancel, Budbee still holds it (its erasure goes by e-mail).
    router.delete(f"https://api.budbee.com/multiple/orders/{BUDBEE_ORDER['id']}").respond(409)
    return klaviyo, mailchimp


async def run(db: Database, shopify_fake: Any) -> Documents:
    klaviyo, mailchimp = stock(shopify_fake, shopify_fake.router)
    with SmtpSink() as sink:
        settings = make_settings(db.url, **sink.settings())
        async with httpx.AsyncClient(timeout=5.0) as http:
            runtime = Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http)
            vault = runtime.vault
            async with db.transaction() as session:
                session.add(
                    Shop(
                        domain=SHOP,
                        name="Demo Butik",
                        country="SE",
                        timezone="Europe/Stockholm",
                        access_token_enc=vault.encrypt("shpat_c", shop_cell("access_token_enc", SHOP)),
                        contact_email_enc=vault.encrypt(
                            "owner@demo-butik.example", shop_cell("contact_email_enc", SHOP)
                        ),
                        legal_name_enc=vault.encrypt("Demo Butik AB", shop_cell("legal_name_enc", SHOP)),
                        address_enc=vault.encrypt(
                            "Storgatan 1, 111 22 Stockholm, Sweden", shop_cell("address_enc", SHOP)
                        ),
                    )
                )
                await configure(runtime, session, SHOP, "klaviyo", {"api_key": klaviyo.api_key})
                await configure(runtime, session, SHOP, "mailchimp", {"api_key": mailchimp.api_key})
                await configure(runtime, session, SHOP, "postnord", {})
                await configure(
                    runtime,
                    session,
                    SHOP,
                    "budbee",
                    {"api_key": "bb-key", "api_secret": "bb-secret", "privacy_email": BUDBEE_PRIVACY},
                )
            clock = Clock()
            worker = Worker(runtime, fast_config(clock=clock), LiveSources(runtime))

            access = await _webhook(runtime, "customers/data_request")
            await worker.drain(limit=80)
            async with db.session() as session:
                texts = {}
                for artifact in await artifacts_of(session, SHOP, access):
                    found = await read_artifact(session, vault, SHOP, artifact.id)
                    assert found is not None, artifact.kind
                    texts[artifact.kind] = found[1]

            erasure = await _webhook(runtime, "customers/redact")
            await worker.drain(limit=80)
            await _deliver_outbox(runtime)
            async with db.transaction() as session:
                waiting = (
                    await session.execute(
                        select(Step.id, Step.system).where(
                            Step.request_id == erasure, Step.state == "awaiting_confirmation"
                        )
                    )
                ).all()
            for step_id, system in waiting:
                async with db.transaction() as session:
                    await confirm_step(session, SHOP, step_id, f"{system} confirmed by e-mail", vault=vault)
            await worker.drain(limit=40)
            await after_shopify_erasure(worker, clock, shopify_fake, SHOP)
            async with db.session() as session:
                request = (await session.execute(select(Request).where(Request.id == erasure))).scalar_one()
                certificate_json = next(
                    a for a in await artifacts_of(session, SHOP, erasure) if a.kind == "certificate_json"
                )
                found = await read_artifact(session, vault, SHOP, certificate_json.id)
                assert found is not None
                certificate_html = {
                    lang: await certificate_document(session, vault, request, lang) or ""
                    for lang in ("sv", "en")
                }
                assert (await evidence.verify(session, SHOP)).ok
    return Documents(
        extract=json.loads(texts["extract_json"]),
        extract_html={"sv": texts["extract_html_sv"], "en": texts["extract_html_en"]},
        certificate=json.loads(found[1]),
        certificate_html=certificate_html,
        sent=[str(m.get_content()) for m in sink.messages],
    )


async def _webhook(runtime: Runtime, topic: str) -> int:
    """A signed webhook as Shopify sends it; the id of the request it recorded."""
    payload = build_payload(topic, SHOP, CUSTOMER, EMAIL, PHONE, [FIRST_ORDER, SECOND_ORDER])
    body = json.dumps(payload).encode()
    headers = signed_request(runtime.settings, topic, body, SHOP)
    async with serving(create_app(runtime), base_url="http://gallra") as client:
        answer = await client.post(f"/webhooks/{topic}", content=body, headers=headers)
    assert answer.status_code == 200, answer.status_code
    async with runtime.db.session() as session:
        found = (
            await session.execute(
                select(Request.id)
                .where(Request.shop_domain == SHOP, Request.kind == KINDS[topic])
                .order_by(Request.id.desc())
                .limit(1)
            )
        ).scalar_one()
    return int(found)


async def _deliver_outbox(runtime: Runtime) -> None:
    for job in JOBS:  # the outbox delivers the carriers' e-mails on its clock
        if job.name == "outbox":
            await job.func(runtime)


def write(documents: Documents, folder: Path) -> list[Path]:
    """The documents as files: the extract (JSON, HTML sv and en) and the certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "register-extract.json": json.dumps(documents.extract, indent=2, ensure_ascii=False) + "\n",
        "register-extract.sv.html": documents.extract_html["sv"],
        "register-extract.en.html": documents.extract_html["en"],
        "certificate-of-erasure.json": json.dumps(documents.certificate, indent=2, ensure_ascii=False) + "\n",
        "certificate-of-erasure.sv.html": documents.certificate_html["sv"],
        "certificate-of-erasure.en.html": documents.certificate_html["en"],
    }
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


async def _generate(folder: Path) -> list[Path]:
    from tests.fakes.shopify import ShopifyFake, load_admin_schema

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/examples.db"
        upgrade(url)
        database = Database(url)
        evidence.bind(database, Vault(TEST_ENCRYPTION_KEY))
        fake = ShopifyFake(schema=load_admin_schema())
        try:
            with fake.mocked():
                documents = await run(database, fake)
        finally:
            await database.dispose()
    return write(documents, folder)


if __name__ == "__main__":
    for path in asyncio.run(_generate(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/examples"))):
        print(f"wrote {path}")
