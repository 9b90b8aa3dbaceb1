"""Shops, requests and runtimes for the notification tests and the busy-month simulation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from plugin.crypto import Vault
from plugin.db import Database
from plugin.ledger import NewRequest, insert_request
from plugin.models import Notification, Request, Shop, shop_cell
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings

SHOP_SV = "butik-sv.myshopify.com"
SHOP_EN = "shop-en.myshopify.com"
OWNER_SV = "agare@butik-sv.se"
OWNER_EN = "owner@shop-en.com"


def build_runtime(db: Database, **settings: Any) -> Runtime:
    return Runtime(
        settings=make_settings(db.url, smtp_from="gallra@gallra.test", **settings),
        db=db,
        vault=Vault(TEST_ENCRYPTION_KEY),
        http=httpx.AsyncClient(),
    )


async def add_shop(
    runtime: Runtime, domain: str, *, locale: str | None, contact: str | None, dry_run: bool = False
) -> None:
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=domain,
                name=domain.split(".")[0],
                country="SE",
                locale=locale,
                timezone="Europe/Stockholm",
                dry_run=dry_run,
                contact_email_enc=runtime.vault.encrypt(contact, shop_cell("contact_email_enc", domain)),
            )
        )


async def add_request(
    runtime: Runtime, domain: str, key: str, *, received: datetime, kind: str = "customer_redact"
) -> int:
    async with runtime.db.transaction() as session:
        request_id = await insert_request(
            session,
            runtime.vault,
            NewRequest(
                kind=kind, shop_domain=domain, business_key=key, customer_id=7, email="anna@example.se"
            ),
        )
        assert request_id is not None
        row = await session.get(Request, request_id)
        assert row is not None
        row.received_at, row.due_at, row.status = received, received + timedelta(days=30), "in_progress"
    return request_id


async def notifications_of(runtime: Runtime, domain: str) -> list[Notification]:
    async with runtime.db.session() as session:
        return list(
            await session.scalars(
                select(Notification).where(Notification.shop_domain == domain).order_by(Notification.id)
            )
        )
