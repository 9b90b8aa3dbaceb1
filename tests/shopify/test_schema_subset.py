"""The pruned schema the fake falls back to is cut from the real one and lets the fake work."""

from __future__ import annotations

from typing import Any

import httpx
from graphql import build_schema, parse, validate

from plugin.shopify import bulk, operations
from plugin.shopify.operations import fetch_customer
from tests.fakes.shopify import SCHEMA_PATH, SUBSET_PATH, ShopifyFake
from tests.fakes.shopify_schema_subset import prune
from tests.shopify.helpers import SHOP, VirtualClock, client_for


def test_full_schema_is_the_one_in_use(shopify_schema: Any) -> None:
    assert SCHEMA_PATH.exists(), f"{SCHEMA_PATH} is missing: documents are not validated"
    assert len(shopify_schema.type_map) > 1000


def test_subset_is_current() -> None:
    assert SCHEMA_PATH.exists(), f"{SCHEMA_PATH} is missing: the pruned copy cannot be checked"
    assert SUBSET_PATH.read_text() == prune(SCHEMA_PATH.read_text()), (
        "run .venv/bin/python -m tests.fakes.shopify_schema_subset"
    )


def test_gallra_documents_fit_the_subset() -> None:
    subset = build_schema(SUBSET_PATH.read_text())
    documents = [
        *operations.DOCUMENTS.values(),
        bulk.RUN_BULK_QUERY,
        bulk.BULK_STATUS,
        bulk.orders_bulk_query(),
        bulk.CUSTOMERS_BULK,
    ]
    for document in documents:
        assert validate(subset, parse(document)) == []


async def test_fake_answers_from_the_subset() -> None:
    fake = ShopifyFake(schema=build_schema(SUBSET_PATH.read_text()))
    fake.add_shop(SHOP)
    fake.add_customer(SHOP, 1, email="a@example.com")
    with fake.mocked():
        async with httpx.AsyncClient() as http:
            customer = await fetch_customer(client_for(fake, http, VirtualClock()), 1)
    assert customer is not None and customer.email == "a@example.com"
