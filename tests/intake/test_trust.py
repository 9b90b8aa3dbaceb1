"""Webhook trust at intake: with one genuine signed delivery in hand, an attacker controls every
header (topic, shop, webhook id, triggered-at). Each attack of issue 13 is tried here, on SQLite
and on the real PostgreSQL server: the body must fit the topic, the shop comes from the signed
body only, and a replay under any headers is a duplicate of the original."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from plugin.db import Database
from plugin.intake.payloads import PayloadError, parse
from plugin.models import Delivery, Request, Shop
from plugin.runtime import Runtime
from tests.intake.conftest import (
    APP_UNINSTALLED,
    CUSTOMER_REDACT,
    DATA_REQUEST,
    PAYLOADS,
    SHOP,
    SHOP_REDACT,
    Sender,
    body_of,
    counts,
    headers_for,
)

OTHER = "other-shop.myshopify.com"


async def _add_shop(db: Database, domain: str = SHOP, installed_at: datetime | None = None) -> None:
    async with db.transaction() as session:
        session.add(
            Shop(
                domain=domain,
                access_token_enc="tok",
                refresh_token_enc="ref",
                installed_at=installed_at or datetime(2026, 1, 1, tzinfo=UTC),
            )
        )


async def _shops(db: Database) -> dict[str, Shop]:
    async with db.session() as session:
        return {shop.domain: shop for shop in (await session.execute(select(Shop))).scalars()}


async def test_customer_redact_body_as_shop_redact_is_400(sender: Sender, db: Database) -> None:
    """The attack: a signed customers/redact body re-sent with `X-Shopify-Topic: shop/redact`."""
    await _add_shop(db)
    body = body_of(CUSTOMER_REDACT)
    for path in ("/webhooks/shop/redact", "/webhooks"):
        response = await sender.client.post(path, content=body, headers=headers_for("shop/redact", body))
        assert response.status_code == 400, response.text
        assert (
            response.json()["status"] == "body does not fit shop/redact: customer: belongs to another topic"
        )
    assert await counts(db) == (0, 0)
    assert (await _shops(db))[SHOP].status == "active"


async def test_data_request_body_as_customers_redact_is_400(sender: Sender, db: Database) -> None:
    response = await sender.send("customers/redact", DATA_REQUEST)
    assert response.status_code == 400
    assert "belongs to another topic" in response.json()["status"]
    assert "john" not in response.text
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize("body_topic", sorted(PAYLOADS))
async def test_no_body_passes_under_another_topic(sender: Sender, db: Database, body_topic: str) -> None:
    for topic in PAYLOADS:
        if topic == body_topic:
            continue
        response = await sender.send(topic, PAYLOADS[body_topic])
        assert response.status_code == 400, (body_topic, topic, response.text)
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize("topic", sorted(PAYLOADS))
async def test_new_optional_fields_are_accepted(sender: Sender, db: Database, topic: str) -> None:
    """Shopify may add fields: unknown keys (top level and in `customer`) never break intake."""
    payload: dict[str, Any] = {**PAYLOADS[topic], "shopify_added_later": {"a": [1, 2]}, "locale": "sv"}
    if "customer" in payload:
        payload["customer"] = {**payload["customer"], "tax_exempt": False}
    response = await sender.send(topic, payload)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "stored"


def test_other_topics_keys_are_refused_even_beside_valid_fields() -> None:
    cases = [
        ("shop/redact", {**SHOP_REDACT, "orders_to_redact": []}),
        ("shop/redact", {**SHOP_REDACT, "data_request": {"id": 1}}),
        ("shop/redact", {**SHOP_REDACT, "orders_requested": [1]}),
        ("shop/redact", {**SHOP_REDACT, "myshopify_domain": SHOP}),
        ("customers/redact", {**CUSTOMER_REDACT, "orders_requested": [1]}),
        ("customers/data_request", {**DATA_REQUEST, "orders_to_redact": [1]}),
        ("app/uninstalled", {**APP_UNINSTALLED, "shop_id": 954889}),
        ("app/uninstalled", {**APP_UNINSTALLED, "customer": {"id": 1}}),
    ]
    for topic, payload in cases:
        with pytest.raises(PayloadError, match="belongs to another topic"):
            parse(topic, body_of(payload))
    # the same keys as null carry nothing and are fine
    parse("shop/redact", body_of({**SHOP_REDACT, "customer": None, "orders_to_redact": None}))


async def test_customer_topics_must_name_a_customer(sender: Sender, db: Database) -> None:
    """A customers/redact with no customer, or a data_request with no data_request.id, was stored and
    ended `done` with nothing done: now 400, never stored."""
    no_customer = {k: v for k, v in CUSTOMER_REDACT.items() if k != "customer"}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("customers/redact", no_customer, "customer: missing"),
        ("customers/redact", {**CUSTOMER_REDACT, "customer": None}, "customer: model_type"),
        ("customers/redact", {**CUSTOMER_REDACT, "customer": {}}, "customer: value_error"),
        ("customers/redact", {**CUSTOMER_REDACT, "customer": {"phone": "555-625-1199"}}, "no id or e-mail"),
        ("customers/redact", {**CUSTOMER_REDACT, "customer": {"email": ""}}, "no id or e-mail"),
        ("customers/data_request", {k: v for k, v in DATA_REQUEST.items() if k != "data_request"}, "missing"),
        ("customers/data_request", {**DATA_REQUEST, "data_request": {}}, "data_request.id: missing"),
        ("customers/data_request", {**DATA_REQUEST, "data_request": {"id": None}}, "data_request.id"),
        ("customers/data_request", {k: v for k, v in DATA_REQUEST.items() if k != "customer"}, "customer"),
    ]
    for topic, payload, reason in cases:
        response = await sender.send(topic, payload)
        assert response.status_code == 400, (payload, response.text)
        assert reason in response.json()["status"]
        assert "555" not in response.text and "john" not in response.text
    assert await counts(db) == (0, 0)
    # an e-mail alone is enough (Shopify documents such records)
    email_only = {**CUSTOMER_REDACT, "customer": {"email": "only@example.com"}}
    assert (await sender.send("customers/redact", email_only)).status_code == 200


async def test_data_request_key_is_always_its_id(sender: Sender, runtime: Runtime) -> None:
    first = await sender.send("customers/data_request", DATA_REQUEST)
    async with runtime.db.session() as session:
        request = await session.get(Request, first.json()["request_id"])
    assert request is not None and request.business_key == "data_request:9999"


async def test_uninstall_with_spoofed_header_and_no_body_domain_is_400(sender: Sender, db: Database) -> None:
    """Any signed body plus `X-Shopify-Shop-Domain: <victim>` used to uninstall the victim."""
    await _add_shop(db)
    no_domain = {"id": 954889, "name": "Snow Devil", "domain": "snowdevil.example"}
    response = await sender.send("app/uninstalled", no_domain, shop=SHOP)
    assert response.status_code == 400
    assert await counts(db) == (0, 0)
    shop = (await _shops(db))[SHOP]
    assert shop.status == "active" and shop.uninstall_claimed_at is None and shop.access_token_enc == "tok"


async def test_header_shop_differing_from_body_loses(sender: Sender, runtime: Runtime, db: Database) -> None:
    await _add_shop(db, SHOP)
    await _add_shop(db, OTHER)
    assert (await sender.send("app/uninstalled", APP_UNINSTALLED, shop=OTHER)).status_code == 200
    redact = await sender.send("shop/redact", SHOP_REDACT, shop=OTHER)
    shops = await _shops(db)
    assert shops[SHOP].uninstall_claimed_at is not None
    assert shops[OTHER].uninstall_claimed_at is None and shops[OTHER].status == "active"
    async with db.session() as session:
        domains = set((await session.execute(select(Delivery.shop_domain))).scalars())
        request = await session.get(Request, redact.json()["request_id"])
    assert domains == {SHOP}
    assert request is not None and request.shop_domain == SHOP


@pytest.mark.parametrize("bad", ["evil.com", "../../<script>", "evil.myshopify.com.evil.com", ""])
async def test_non_shop_domains_are_never_stored(sender: Sender, db: Database, bad: str) -> None:
    bodies = [
        {**APP_UNINSTALLED, "myshopify_domain": bad},
        {**{k: v for k, v in APP_UNINSTALLED.items() if k != "myshopify_domain"}, "domain": bad},
    ]
    for payload in bodies:
        assert (await sender.send("app/uninstalled", payload, shop=bad or None)).status_code == 400
    assert (await sender.send("shop/redact", {**SHOP_REDACT, "shop_domain": bad})).status_code == 400
    assert await counts(db) == (0, 0)
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Shop))).scalar_one() == 0


async def test_uninstall_replay_after_reinstall_leaves_the_shop_installed(
    sender: Sender, db: Database
) -> None:
    """An old uninstall replayed after a reinstall, with a new webhook id and no triggered-at: the
    shop keeps its status and token (only a claim is recorded, which Shopify's answer to the still
    working token dismisses: tests/pipelines/test_uninstall.py)."""
    await _add_shop(db, installed_at=datetime.now(UTC) - timedelta(minutes=5))
    response = await sender.send("app/uninstalled", APP_UNINSTALLED, triggered_at=None)
    assert response.status_code == 200
    shop = (await _shops(db))[SHOP]
    assert shop.status == "active" and shop.uninstalled_at is None
    assert shop.access_token_enc == "tok" and shop.refresh_token_enc == "ref"


@pytest.mark.parametrize("topic", ["customers/data_request", "customers/redact", "shop/redact"])
async def test_replay_under_any_headers_is_a_duplicate(sender: Sender, db: Database, topic: str) -> None:
    """The business key comes from the signed body alone: a replay later, under a new webhook id,
    another shop header, another or no triggered-at, or the generic endpoint, creates nothing."""
    original = await sender.send(topic, PAYLOADS[topic])
    assert original.json()["status"] == "stored"
    replays = [
        await sender.send(topic, PAYLOADS[topic], shop=OTHER, triggered_at="2030-01-01T00:00:00Z"),
        await sender.send(topic, PAYLOADS[topic], shop=None, triggered_at=None, api_version=None),
        await sender.send(topic, PAYLOADS[topic], path="/webhooks", family="shopify-"),
    ]
    for replay in replays:
        assert replay.status_code == 200
        assert replay.json() == {"status": "duplicate", "request_id": original.json()["request_id"]}
    assert await counts(db) == (1, 1)
