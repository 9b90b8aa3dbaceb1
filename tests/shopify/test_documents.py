"""Every GraphQL document Gallra sends is valid against Shopify's 2026-01 Admin schema and uses no
deprecated field (a deprecated field is the next version's removed field)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse, specified_rules, validate
from graphql.validation import NoDeprecatedCustomRule

from plugin.shopify import bulk, operations

DOCUMENTS = {
    **operations.DOCUMENTS,
    "RunBulkQuery": bulk.RUN_BULK_QUERY,
    "BulkStatus": bulk.BULK_STATUS,
    "bulk orders": bulk.orders_bulk_query(),
    "bulk orders filtered": bulk.orders_bulk_query("created_at:<2016-01-01 AND customer_id:7"),
    "bulk customers": bulk.CUSTOMERS_BULK,
}


def test_schema_is_present(shopify_schema: Any) -> None:
    assert shopify_schema is not None, "shopify-admin-2026-01.graphql is missing: nothing is validated"


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_and_current(name: str, shopify_schema: Any) -> None:
    errors = validate(shopify_schema, parse(DOCUMENTS[name]), [*specified_rules, NoDeprecatedCustomRule])
    assert [e.message for e in errors] == []
