"""Every answer intake gives, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text

from plugin.app import create_app
from plugin.db import Database
from plugin.intake.routes import MAX_BODY
from plugin.intake.routes import close as close_intake
from plugin.intake.signature import sign
from plugin.models import Delivery, Request, Shop, cell_of
from plugin.runtime import Runtime
from tests.conftest import serving
from tests.intake.conftest import (
    APP_UNINSTALLED,
    CUSTOMER_REDACT,
    DATA_REQUEST,
    PAYLOADS,
    SHOP,
    SHOP_REDACT,
    Sender,
    body_of,
    build_runtime,
    counts,
    headers_for,
)


async def test_each_topic_is_stored_with_its_delivery(sender: Sender, runtime: Runtime) -> None:
    expected_kinds = {
        "customers/data_request": "data_request",
        "customers/redact": "customer_redact",
        "shop/redact": "shop_redact",
    }
    for topic, payload in PAYLOADS.items():
        response = await sender.send(topic, payload, webhook_id=f"wh-{topic}")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "stored"
        async with runtime.db.session() as session:
            delivery = (await session.execute(select(Delivery).where(Delivery.topic == topic))).scalar_one()
        assert delivery.webhook_id == f"wh-{topic}" and delivery.shop_domain == SHOP
        assert delivery.api_version == "2026-01"
        assert delivery.triggered_at == "2026-11-22T10:08:46.395212977Z"
        # the raw body, byte for byte, encrypted at rest
        stored = runtime.vault.decrypt_bytes(delivery.body_enc, cell_of(delivery, "body_enc"))
        assert stored == body_of(payload)
        assert b"john" not in delivery.body_enc.encode()
        assert delivery.request_id == response.json()["request_id"]
        if topic in expected_kinds:
            async with runtime.db.session() as session:
                request = await session.get(Request, delivery.request_id)
            assert request is not None and request.kind == expected_kinds[topic]
        else:
            assert delivery.request_id is None
    assert await counts(runtime.db) == (3, 4)


async def test_ledger_request_fields(sender: Sender, runtime: Runtime) -> None:
    before = datetime.now(UTC)
    response = await sender.send("customers/data_request", DATA_REQUEST)
    async with runtime.db.session() as session:
        request = await session.get(Request, response.json()["request_id"])
    assert request is not None
    assert (request.shop_domain, request.kind, request.status) == (SHOP, "data_request", "received")
    assert request.customer_id == 191167 and request.data_request_id == 9999
    assert request.shopify_shop_id == 954889
    assert request.order_ids == [220458, 280263, 299938]
    assert before - timedelta(seconds=1) <= request.received_at <= datetime.now(UTC)
    assert request.due_at == request.received_at + timedelta(days=30)
    assert request.attempts == 0 and request.lease_owner is None
    assert request.email_enc is not None and "john" not in request.email_enc
    assert runtime.vault.decrypt(request.email_enc, cell_of(request, "email_enc")) == "john@example.com"
    assert request.email_hash == runtime.vault.email_hash(SHOP, "John@Example.com")
    assert runtime.vault.decrypt(request.phone_enc, cell_of(request, "phone_enc")) == "555-625-1199"
    assert request.phone_hash == runtime.vault.phone_hash(SHOP, "555 625 1199")


async def test_generic_endpoint_takes_topic_from_header(sender: Sender, db: Database) -> None:
    response = await sender.send("shop/redact", SHOP_REDACT, path="/webhooks")
    assert response.status_code == 200 and response.json()["status"] == "stored"
    assert await counts(db) == (1, 1)


async def test_unknown_topic_is_404(sender: Sender, client: httpx.AsyncClient, db: Database) -> None:
    assert (await sender.send("orders/create", SHOP_REDACT, path="/webhooks")).status_code == 404
    assert (await sender.send("orders/create", SHOP_REDACT)).status_code == 404
    body = body_of(SHOP_REDACT)
    headers = headers_for("shop/redact", body)
    del headers["X-Shopify-Topic"]
    assert (await client.post("/webhooks", content=body, headers=headers)).status_code == 404
    assert await counts(db) == (0, 0)


async def test_signature_missing_or_wrong_is_401(
    client: httpx.AsyncClient, sender: Sender, db: Database
) -> None:
    body = body_of(SHOP_REDACT)
    headers = headers_for("shop/redact", body)
    del headers["X-Shopify-Hmac-Sha256"]
    assert (await client.post("/webhooks/shop/redact", content=body, headers=headers)).status_code == 401
    assert (await sender.send("shop/redact", SHOP_REDACT, secret="not-the-secret")).status_code == 401
    assert (await sender.send("shop/redact", SHOP_REDACT, signature="garbage")).status_code == 401
    # signed over different bytes than those sent
    other = sign(body_of({**SHOP_REDACT, "shop_id": 1}), "hush")
    assert (await sender.send("shop/redact", SHOP_REDACT, signature=other)).status_code == 401
    # even an empty or broken body is refused for its signature first
    assert (await sender.send("shop/redact", b"", signature="x")).status_code == 401
    assert (await sender.send("shop/redact", b"{", signature="x")).status_code == 401
    assert await counts(db) == (0, 0)


async def test_previous_secret_accepted(sender: Sender, runtime: Runtime) -> None:
    previous = runtime.settings.shopify_api_secret_previous
    assert previous is not None
    response = await sender.send("customers/redact", CUSTOMER_REDACT, secret=previous.get_secret_value())
    assert response.status_code == 200 and response.json()["status"] == "stored"


async def test_not_post_is_405(client: httpx.AsyncClient) -> None:
    for path in ("/webhooks", "/webhooks/customers/redact"):
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            assert (await client.request(method, path)).status_code == 405


async def test_bad_bodies_are_400_without_personal_data(sender: Sender, db: Database) -> None:
    cases = [
        b"",
        b"{not json",
        b'"a string"',
        body_of({"shop_domain": SHOP}),
        body_of({**DATA_REQUEST, "customer": {"id": "john@example.com"}}),
        body_of({**CUSTOMER_REDACT, "customer": None, "orders_to_redact": []}),
    ]
    for body in cases:
        response = await sender.send("customers/data_request", body)
        assert response.status_code == 400, (body, response.text)
        assert "john" not in response.text and "555" not in response.text
    # customers/redact naming nobody at all
    empty = {**CUSTOMER_REDACT, "customer": {"email": None}, "orders_to_redact": []}
    assert (await sender.send("customers/redact", empty)).status_code == 400
    assert await counts(db) == (0, 0)


async def test_oversized_body_is_413(client: httpx.AsyncClient, sender: Sender, db: Database) -> None:
    big = body_of({**SHOP_REDACT, "padding": "x" * MAX_BODY})
    assert (await sender.send("shop/redact", big)).status_code == 413
    # exactly at the limit is fine (and then judged on its content)
    at_limit = body_of({**SHOP_REDACT, "pad": ""})
    at_limit = body_of({**SHOP_REDACT, "pad": "x" * (MAX_BODY - len(at_limit))})
    assert len(at_limit) == MAX_BODY
    assert (await sender.send("shop/redact", at_limit)).status_code == 200

    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 10 * MAX_BODY:
            sent += 64 * 1024
            yield b" " * (64 * 1024)

    headers = headers_for("shop/redact", b"", signature="whatever")
    response = await client.post("/webhooks/shop/redact", content=endless(), headers=headers)
    assert response.status_code == 413
    assert sent <= MAX_BODY + 64 * 1024  # stopped reading right after the limit
    assert await counts(db) == (1, 1)


async def test_missing_shop_and_version_headers(sender: Sender, runtime: Runtime) -> None:
    response = await sender.send("customers/redact", CUSTOMER_REDACT, shop=None, api_version=None)
    assert response.status_code == 200
    async with runtime.db.session() as session:
        delivery = (await session.execute(select(Delivery))).scalar_one()
    assert delivery.shop_domain == SHOP and delivery.api_version is None


async def test_events_header_family(sender: Sender, db: Database) -> None:
    response = await sender.send("shop/redact", SHOP_REDACT, family="shopify-", path="/webhooks")
    assert response.status_code == 200 and response.json()["status"] == "stored"
    lower = await sender.send("customers/redact", CUSTOMER_REDACT, family="shopify-")
    assert lower.status_code == 200
    assert await counts(db) == (2, 2)


async def test_topic_header_must_match_path(sender: Sender) -> None:
    body = body_of(SHOP_REDACT)
    headers = headers_for("customers/redact", body)
    response = await sender.client.post("/webhooks/shop/redact", content=body, headers=headers)
    assert response.status_code == 400


async def test_overlong_header_is_400(sender: Sender) -> None:
    assert (await sender.send("shop/redact", SHOP_REDACT, webhook_id="w" * 300)).status_code == 400


async def test_duplicates_sequential(sender: Sender, db: Database) -> None:
    first = await sender.send("customers/data_request", DATA_REQUEST, webhook_id="same")
    again = await sender.send("customers/data_request", DATA_REQUEST, webhook_id="same")
    assert first.json()["status"] == "stored" and again.json()["status"] == "duplicate"
    assert again.status_code == 200 and again.json()["request_id"] == first.json()["request_id"]
    # a new webhook id with the same data_request.id is the same request
    other_id = await sender.send("customers/data_request", DATA_REQUEST, webhook_id="other")
    assert other_id.json() == {"status": "duplicate", "request_id": first.json()["request_id"]}
    assert await counts(db) == (1, 1)
    # a different data_request.id is a new request
    newer = await sender.send("customers/data_request", {**DATA_REQUEST, "data_request": {"id": 10000}})
    assert newer.json()["status"] == "stored"
    assert await counts(db) == (2, 2)


async def test_reused_webhook_id_with_another_body_creates_nothing(sender: Sender, db: Database) -> None:
    first = await sender.send("customers/data_request", DATA_REQUEST, webhook_id="reused")
    other = {**DATA_REQUEST, "data_request": {"id": 123456}}
    again = await sender.send("customers/data_request", other, webhook_id="reused")
    assert again.json() == {"status": "duplicate", "request_id": first.json()["request_id"]}
    assert await counts(db) == (1, 1)


async def test_duplicate_business_keys(sender: Sender, db: Database) -> None:
    await sender.send("customers/redact", CUSTOMER_REDACT)
    shuffled = {**CUSTOMER_REDACT, "orders_to_redact": [220458, 299938, 280263]}
    assert (await sender.send("customers/redact", shuffled)).json()["status"] == "duplicate"
    fewer = {**CUSTOMER_REDACT, "orders_to_redact": [220458]}
    assert (await sender.send("customers/redact", fewer)).json()["status"] == "stored"
    await sender.send("shop/redact", SHOP_REDACT)
    assert (await sender.send("shop/redact", SHOP_REDACT)).json()["status"] == "duplicate"
    # same customer at another shop is another request
    elsewhere = {**CUSTOMER_REDACT, "shop_domain": "other.myshopify.com", "shop_id": 2}
    assert (await sender.send("customers/redact", elsewhere)).json()["status"] == "stored"
    assert await counts(db) == (4, 4)


async def test_email_only_customer_redact_dedupes_on_keyed_hash(sender: Sender, runtime: Runtime) -> None:
    payload = {**CUSTOMER_REDACT, "customer": {"email": "Only@Example.com"}, "orders_to_redact": []}
    assert (await sender.send("customers/redact", payload)).json()["status"] == "stored"
    same = {**payload, "customer": {"email": "only@example.com"}}
    assert (await sender.send("customers/redact", same)).json()["status"] == "duplicate"
    async with runtime.db.session() as session:
        request = (await session.execute(select(Request))).scalar_one()
    assert "only" not in request.business_key.lower()


async def test_duplicates_concurrent(sender: Sender, db: Database) -> None:
    body = body_of(CUSTOMER_REDACT)
    headers = headers_for("customers/redact", body, webhook_id="concurrent")
    responses = await asyncio.gather(
        *(sender.client.post("/webhooks/customers/redact", content=body, headers=headers) for _ in range(25))
    )
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["status"] for r in responses].count("stored") == 1
    assert len({r.json()["request_id"] for r in responses}) == 1
    assert await counts(db) == (1, 1)


@pytest.mark.postgres
async def test_100_concurrent_deliveries_on_postgres(pg_db: Database) -> None:
    """Ten app instances (own engine, own group-commit writer each), as several processes would be,
    receive one webhook 100 times at once: the unique indexes, not the writers, keep it to one."""
    runtimes = [build_runtime(Database(pg_db.url)) for _ in range(10)]
    apps = [create_app(runtime) for runtime in runtimes]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gallra.test")
        for app in apps
    ]
    body = body_of(DATA_REQUEST)
    path = "/webhooks/customers/data_request"
    same = headers_for("customers/data_request", body, webhook_id="one-webhook")
    try:
        responses = await asyncio.gather(
            *(clients[n % 10].post(path, content=body, headers=same) for n in range(100))
        )
        # and the same request under 100 different webhook ids
        fresh_ids = await asyncio.gather(
            *(
                clients[n % 10].post(path, content=body, headers=headers_for("customers/data_request", body))
                for n in range(100)
            )
        )
    finally:
        for client, app, runtime in zip(clients, apps, runtimes, strict=True):
            await client.aclose()
            await close_intake(app.state)  # as the lifespan would: its connection goes back
            await runtime.http.aclose()
            await runtime.db.dispose()
    assert [r.status_code for r in responses + fresh_ids] == [200] * 200
    assert [r.json()["status"] for r in responses + fresh_ids].count("stored") == 1
    assert len({r.json()["request_id"] for r in responses + fresh_ids}) == 1
    assert await counts(pg_db) == (1, 1)


async def test_work_available_set_after_commit_only(sender: Sender, runtime: Runtime) -> None:
    runtime.work_available.clear()
    await sender.send("shop/redact", SHOP_REDACT, secret="wrong")
    assert not runtime.work_available.is_set()
    await sender.send("shop/redact", SHOP_REDACT)
    assert runtime.work_available.is_set()
    runtime.work_available.clear()
    await sender.send("shop/redact", SHOP_REDACT)
    assert not runtime.work_available.is_set()


async def _add_shop(db: Database, installed_at: datetime) -> None:
    async with db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                access_token_enc="tok",
                refresh_token_enc="ref",
                access_token_expires_at=installed_at + timedelta(hours=1),
                installed_at=installed_at,
            )
        )


async def _shop(db: Database) -> Shop:
    async with db.session() as session:
        return (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()


async def test_app_uninstalled_records_a_claim_and_keeps_the_tokens(sender: Sender, db: Database) -> None:
    """The delivery may be a replay: intake records the claim, the clocks confirm it with Shopify
    (tests/pipelines/test_uninstall.py) before the shop is marked uninstalled and its tokens go."""
    await _add_shop(db, datetime(2026, 1, 1, tzinfo=UTC))
    response = await sender.send("app/uninstalled", APP_UNINSTALLED)
    assert response.status_code == 200 and response.json() == {"status": "stored", "request_id": None}
    shop = await _shop(db)
    assert shop.status == "active" and shop.uninstalled_at is None
    assert shop.access_token_enc == "tok" and shop.refresh_token_enc == "ref"
    claimed = shop.uninstall_claimed_at
    assert claimed is not None
    # repeated deliveries (new webhook ids) are fine and keep the first claim
    for _ in range(2):
        assert (await sender.send("app/uninstalled", APP_UNINSTALLED)).status_code == 200
    shop = await _shop(db)
    assert shop.status == "active" and shop.uninstall_claimed_at == claimed


async def test_app_uninstalled_takes_the_shop_from_the_body_only(sender: Sender, db: Database) -> None:
    response = await sender.send("app/uninstalled", APP_UNINSTALLED, shop=None)
    assert response.status_code == 200
    # a shop without a custom domain: `domain` is its myshopify domain
    own_domain = {**{k: v for k, v in APP_UNINSTALLED.items() if k != "myshopify_domain"}, "domain": SHOP}
    assert (await sender.send("app/uninstalled", own_domain, shop=None)).status_code == 200
    # shop only in the (unsigned) header: refused
    no_domain = {k: v for k, v in APP_UNINSTALLED.items() if k != "myshopify_domain"}
    refused = await sender.send("app/uninstalled", no_domain)
    assert refused.status_code == 400 and "myshopify" in refused.json()["status"]
    assert (await sender.send("app/uninstalled", no_domain, shop=None)).status_code == 400
    assert await counts(db) == (0, 2)


async def test_late_uninstall_after_reinstall_leaves_shop_alone(sender: Sender, db: Database) -> None:
    await _add_shop(db, datetime(2026, 11, 23, tzinfo=UTC))  # installed after the delivery's trigger
    assert (await sender.send("app/uninstalled", APP_UNINSTALLED)).status_code == 200
    shop = await _shop(db)
    assert shop.status == "active" and shop.access_token_enc == "tok"
    assert shop.uninstall_claimed_at is None  # not even a claim to confirm


async def test_database_down_is_503(db: Database) -> None:
    url = (
        "sqlite+aiosqlite:////nonexistent-dir/gallra.db"
        if db.is_sqlite
        else "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    )
    down = Database(url)
    runtime = build_runtime(down)
    async with serving(create_app(runtime)) as client:
        for topic, payload in PAYLOADS.items():
            body = body_of(payload)
            response = await client.post(f"/webhooks/{topic}", content=body, headers=headers_for(topic, body))
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"]
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
    assert not runtime.work_available.is_set()
    await runtime.http.aclose()
    await down.dispose()


async def test_database_failing_mid_transaction_is_503(
    sender: Sender, runtime: Runtime, db: Database
) -> None:
    # the delivery insert fails after the request insert: nothing may remain, no 2xx. A trigger,
    # so that the failure is the database's whichever process writes (SQLite: intake's writer).
    async with refusing_deliveries(db):
        response = await sender.send("customers/redact", CUSTOMER_REDACT)
    assert response.status_code == 503
    assert await counts(db) == (0, 0)
    # and once the database is back, Shopify's retry is stored
    assert (await sender.send("customers/redact", CUSTOMER_REDACT)).json()["status"] == "stored"


@asynccontextmanager
async def refusing_deliveries(db: Database) -> AsyncIterator[None]:
    if db.is_sqlite:
        create = [
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER refuse"]
    else:
        create = [
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries EXECUTE FUNCTION refuse()",
        ]
        drop = ["DROP TRIGGER refuse ON deliveries", "DROP FUNCTION refuse()"]
    async with db.transaction() as session:
        for statement in create:
            await session.execute(text(statement))
    try:
        yield
    finally:
        async with db.transaction() as session:
            for statement in drop:
                await session.execute(text(statement))


async def test_health_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_overlong_shop_domain_is_400(sender: Sender, db: Database) -> None:
    # fits the pattern but not the column: refused as a bad body, never a database error
    long_domain = "a" * 250 + ".myshopify.com"
    assert (await sender.send("shop/redact", {**SHOP_REDACT, "shop_domain": long_domain})).status_code == 400
    assert await counts(db) == (0, 0)


async def test_client_gone_mid_body_gets_no_answer_and_stores_nothing(runtime: Runtime, db: Database) -> None:
    """A delivery goes straight to intake's endpoint (`plugin.app.App`): a client that disconnects
    before its body is whole is dropped quietly, without an answer or a row."""
    app = create_app(runtime)
    body = body_of(DATA_REQUEST)
    headers = headers_for("customers/data_request", body)
    messages: Iterator[dict[str, object]] = iter(
        [
            {"type": "http.request", "body": body[:10], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: object) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/customers/data_request",
        "raw_path": b"/webhooks/customers/data_request",
        "root_path": "",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    async with serving(app):
        await app(scope, receive, send)
    assert sent == []
    assert await counts(db) == (0, 0)
