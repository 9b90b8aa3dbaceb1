"""The fake itself must behave like Shopify, or every test built on it proves nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.fakes.shopify import ShopifyFake

SHOP = "shop-a.myshopify.com"
URL = f"https://{SHOP}/admin/api/2026-01/graphql.json"
HEADERS = {"X-Shopify-Access-Token": "shpat_test"}


async def _post(
    query: str, variables: dict[str, Any] | None = None, headers: dict[str, str] = HEADERS
) -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            URL, headers=headers, json={"query": query, "variables": variables or {}}
        )
    return response.status_code, response.json()


async def test_invalid_field_is_answered_like_shopify(shopify_fake: ShopifyFake) -> None:
    shopify_fake.add_shop(SHOP)
    status, body = await _post("{ shop { nmae } }")
    assert status == 200
    assert "Cannot query field 'nmae' on type 'Shop'" in body["errors"][0]["message"]
    status, body = await _post("query($id: ID!) { customer(id: $id) { id } }", {"id": None})
    assert body["errors"] and body.get("data") is None


async def test_unknown_token_is_401(shopify_fake: ShopifyFake) -> None:
    shopify_fake.add_shop(SHOP)
    status, body = await _post("{ shop { name } }", headers={"X-Shopify-Access-Token": "nope"})
    assert status == 401 and "Invalid API key or access token" in body["errors"]


async def test_cost_bucket_throttles_and_restores(shopify_fake: ShopifyFake) -> None:
    now = [1000.0]
    shopify_fake.clock = lambda: now[0]
    shop = shopify_fake.add_shop(SHOP)
    shop.bucket.maximum = shop.bucket.available = 30
    query = "{ orders(first: 8) { nodes { id } } }"  # 2 + 8 × 1 = 10 points
    for expected_left in (20, 10, 0):
        _, body = await _post(query)
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 10
        assert cost["throttleStatus"]["currentlyAvailable"] == expected_left
    _, body = await _post(query)
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    now[0] += 0.1  # restore 100/s → 10 points
    _, body = await _post(query)
    assert "errors" not in body and shopify_fake.throttled == 1


async def test_max_cost_exceeded(shopify_fake: ShopifyFake) -> None:
    shopify_fake.add_shop(SHOP)
    _, body = await _post("{ customers(first: 250) { nodes { id orders(first: 10) { nodes { id } } } } }")
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["errors"][0]["extensions"]["maxCost"] == 1000


async def test_mutations_are_recorded_and_change_state(shopify_fake: ShopifyFake) -> None:
    shopify_fake.add_shop(SHOP)
    shopify_fake.add_customer(SHOP, 7, email="a@example.com", email_marketing="SUBSCRIBED")
    mutation = """mutation($input: CustomerEmailMarketingConsentUpdateInput!) {
      customerEmailMarketingConsentUpdate(input: $input) { userErrors { field message code } } }"""
    variables: dict[str, Any] = {
        "input": {
            "customerId": "gid://shopify/Customer/7",
            "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"},
        }
    }
    _, body = await _post(mutation, variables)
    assert body["data"]["customerEmailMarketingConsentUpdate"]["userErrors"] == []
    assert shopify_fake.customer(SHOP, 7)["email_marketing"] == "UNSUBSCRIBED"
    assert shopify_fake.mutations == [(SHOP, "customerEmailMarketingConsentUpdate", variables)]
    variables["input"]["emailMarketingConsent"]["marketingState"] = "NOT_SUBSCRIBED"  # read-only state
    _, body = await _post(mutation, variables)
    assert body["data"]["customerEmailMarketingConsentUpdate"]["userErrors"][0]["code"] == "INVALID"


async def test_bulk_jsonl_has_parent_ids(shopify_fake: ShopifyFake) -> None:
    shopify_fake.add_shop(SHOP)
    shopify_fake.add_customer(SHOP, 1, email="a@example.com")
    shopify_fake.add_order(SHOP, 10, customer_id=1, created_at=datetime(2020, 1, 2, tzinfo=UTC))
    run = """mutation($q: String!) { bulkOperationRunQuery(query: $q, groupObjects: false) {
      bulkOperation { id status } userErrors { message code } } }"""
    _, body = await _post(
        run, {"q": "{ customers { edges { node { id orders { edges { node { id } } } } } } }"}
    )
    op = body["data"]["bulkOperationRunQuery"]["bulkOperation"]
    poll = "query($id: ID!) { bulkOperation(id: $id) { status url } }"
    statuses = []
    for _ in range(2):
        _, body = await _post(poll, {"id": op["id"]})
        statuses.append(body["data"]["bulkOperation"]["status"])
    assert statuses == ["RUNNING", "COMPLETED"]
    async with httpx.AsyncClient() as client:
        text = (await client.get(body["data"]["bulkOperation"]["url"])).text
    assert [json.loads(line) for line in text.splitlines()] == [
        {"id": "gid://shopify/Customer/1"},
        {"id": "gid://shopify/Order/10", "__parentId": "gid://shopify/Customer/1"},
    ]
    _, body = await _post(run, {"q": "{ shop { name } }"})
    assert body["data"]["bulkOperationRunQuery"]["userErrors"][0]["code"] == "INVALID"


@pytest.mark.parametrize("grant", ["code", "bad-code"])
async def test_token_endpoint_code_grant(shopify_fake: ShopifyFake, grant: str) -> None:
    shopify_fake.add_shop(SHOP, token=None)
    code = shopify_fake.authorize(SHOP) if grant == "code" else "nope"
    body = {"client_id": "test-client-id", "client_secret": "hush", "code": code, "expiring": "1"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"https://{SHOP}/admin/oauth/access_token", json=body)
        again = await client.post(f"https://{SHOP}/admin/oauth/access_token", json=body)
    if grant == "code":
        assert response.status_code == 200 and response.json()["expires_in"] == 3600
        assert shopify_fake.valid_token(SHOP, response.json()["access_token"])
    assert again.status_code == 400  # codes are single use
