"""Intake fixtures: the app over the `db` fixture (SQLite and PostgreSQL), and a signed sender."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from plugin.app import create_app
from plugin.crypto import Vault
from plugin.db import Database
from plugin.intake.signature import sign
from plugin.models import Delivery, Request
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET, make_settings, serving

SHOP = "snowdevil.myshopify.com"

DATA_REQUEST: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": SHOP,
    "orders_requested": [299938, 280263, 220458],
    "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
    "data_request": {"id": 9999},
}
CUSTOMER_REDACT: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": SHOP,
    "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
    "orders_to_redact": [299938, 280263, 220458],
}
SHOP_REDACT: dict[str, Any] = {"shop_id": 954889, "shop_domain": SHOP}
APP_UNINSTALLED: dict[str, Any] = {
    "id": 954889,
    "name": "Snow Devil",
    "email": "owner@snowdevil.example",
    "shop_owner": "Astrid Lindqvist",
    "domain": "snowdevil.example",
    "myshopify_domain": SHOP,
}
PAYLOADS = {
    "customers/data_request": DATA_REQUEST,
    "customers/redact": CUSTOMER_REDACT,
    "shop/redact": SHOP_REDACT,
    "app/uninstalled": APP_UNINSTALLED,
}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def headers_for(
    topic: str,
    body: bytes,
    *,
    secret: str = TEST_SECRET,
    family: str = "X-Shopify-",
    webhook_id: str | None = None,
    shop: str | None = SHOP,
    api_version: str | None = "2026-01",
    signature: str | None = None,
    triggered_at: str | None = "2026-11-22T10:08:46.395212977Z",
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        f"{family}Topic": topic,
        f"{family}Hmac-Sha256": signature if signature is not None else sign(body, secret),
        f"{family}Webhook-Id": webhook_id or str(uuid.uuid4()),
        f"{family}Event-Id": str(uuid.uuid4()),
    }
    if triggered_at is not None:
        headers[f"{family}Triggered-At"] = triggered_at
    if shop is not None:
        headers[f"{family}Shop-Domain"] = shop
    if api_version is not None:
        headers[f"{family}API-Version"] = api_version
    return headers


@dataclass
class Sender:
    client: httpx.AsyncClient

    async def send(
        self, topic: str, payload: dict[str, Any] | bytes, *, path: str | None = None, **kw: Any
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else body_of(payload)
        return await self.client.post(
            path or f"/webhooks/{topic}", content=body, headers=headers_for(topic, body, **kw)
        )


async def counts(db: Database) -> tuple[int, int]:
    """(requests, deliveries) stored."""
    async with db.session() as session:
        requests = (await session.execute(select(func.count()).select_from(Request))).scalar_one()
        deliveries = (await session.execute(select(func.count()).select_from(Delivery))).scalar_one()
    return int(requests), int(deliveries)


def build_runtime(db: Database, **overrides: object) -> Runtime:
    settings = make_settings(database_url=db.url, **overrides)
    return Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=httpx.AsyncClient())


@pytest.fixture
async def runtime(db: Database) -> AsyncIterator[Runtime]:
    built = build_runtime(db, shopify_api_secret_previous="old-" + Fernet.generate_key().decode()[:8])
    yield built
    await built.http.aclose()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(runtime)) as http:
        yield http


@pytest.fixture
def sender(client: httpx.AsyncClient) -> Sender:
    return Sender(client)
