"""`customers/merge` at intake: validated as strictly as the other topics, stored with its delivery
before the 2xx, deduplicated by webhook id and by the merge itself, on SQLite and PostgreSQL.
What a stored merge then changes is tests/pipelines/test_merges.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from plugin.db import Database
from plugin.intake.payloads import CustomersMerge, PayloadError, parse
from plugin.models import CustomerMerge, Delivery
from tests.intake.conftest import CUSTOMER_REDACT, SHOP, SHOP_REDACT, Sender, body_of, counts

# Shopify's sample payload (https://shopify.dev/docs/api/webhooks, customers/merge), completed.
MERGE: dict[str, Any] = {
    "admin_graphql_api_customer_kept_id": "gid://shopify/Customer/1",
    "admin_graphql_api_customer_deleted_id": "gid://shopify/Customer/2",
    "admin_graphql_api_job_id": "gid://shopify/Job/merge-1",
    "status": "completed",
    "errors": [],
}
FAILED: dict[str, Any] = {
    **MERGE,
    "admin_graphql_api_job_id": None,
    "status": "failed",
    "errors": [
        {"customer_ids": [1], "field": "merge_in_progress", "message": "John Doe is currently being merged."}
    ],
}


async def _merges(db: Database) -> list[CustomerMerge]:
    async with db.session() as session:
        return list((await session.execute(select(CustomerMerge).order_by(CustomerMerge.id))).scalars())


async def test_a_merge_is_stored_for_the_clocks_with_its_delivery(sender: Sender, db: Database) -> None:
    response = await sender.send("customers/merge", MERGE)
    assert response.status_code == 200 and response.json() == {"status": "stored", "request_id": None}
    (merge,) = await _merges(db)
    assert (merge.shop_domain, merge.kept_customer_id, merge.deleted_customer_id) == (SHOP, 1, 2)
    assert (merge.status, merge.state, merge.job_id) == ("completed", "received", "gid://shopify/Job/merge-1")
    assert await counts(db) == (0, 1)  # a delivery, no privacy request


async def test_a_failed_merge_is_stored_as_received_too(sender: Sender, db: Database) -> None:
    assert (await sender.send("customers/merge", FAILED)).status_code == 200
    (merge,) = await _merges(db)
    assert (merge.status, merge.state) == ("failed", "received")
    async with db.session() as session:
        (delivery,) = (await session.execute(select(Delivery))).scalars()
    assert "John Doe" not in delivery.body_enc  # the errors' message only in the encrypted body


async def test_duplicates_by_webhook_id_and_by_the_merge_itself(sender: Sender, db: Database) -> None:
    first = await sender.send("customers/merge", MERGE, webhook_id="hook-1")
    again = await sender.send("customers/merge", MERGE, webhook_id="hook-1")
    assert (first.json()["status"], again.json()["status"]) == ("stored", "duplicate")
    # A replay under a new webhook id is a second delivery of the same merge, not a second merge.
    assert (await sender.send("customers/merge", MERGE, webhook_id="hook-2")).status_code == 200
    assert len(await _merges(db)) == 1
    assert await counts(db) == (0, 2)
    # The same customers merging again later (another job) is another merge.
    assert (
        await sender.send("customers/merge", {**MERGE, "admin_graphql_api_job_id": None})
    ).status_code == 200
    assert len(await _merges(db)) == 2


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"admin_graphql_api_customer_kept_id": None}, "admin_graphql_api_customer_kept_id"),
        ({"admin_graphql_api_customer_deleted_id": "gid://shopify/Order/2"}, "not a gid://shopify/Customer"),
        ({"admin_graphql_api_customer_deleted_id": "2"}, "not a gid://shopify/Customer"),
        ({"admin_graphql_api_customer_deleted_id": "gid://shopify/Customer/1"}, "same"),
        ({"status": ""}, "status"),
        ({"status": None}, "status"),
        # Another topic's keys: not a merge.
        ({"shop_domain": SHOP}, "belongs to another topic"),
        ({"customer": {"id": 1}}, "belongs to another topic"),
        ({"myshopify_domain": SHOP}, "belongs to another topic"),
    ],
)
async def test_bad_merge_bodies_are_400_and_store_nothing(
    sender: Sender, db: Database, change: dict[str, Any], why: str
) -> None:
    response = await sender.send("customers/merge", {**MERGE, **change})
    assert response.status_code == 400 and why in response.json()["status"]
    assert "Doe" not in response.text
    assert await counts(db) == (0, 0) and await _merges(db) == []


async def test_other_topics_bodies_and_forgeries_are_refused(sender: Sender, db: Database) -> None:
    # Another topic's signed body under customers/merge, and a merge body under another topic.
    assert (await sender.send("customers/merge", CUSTOMER_REDACT)).status_code == 400
    assert (await sender.send("customers/merge", SHOP_REDACT)).status_code == 400
    assert (await sender.send("customers/redact", MERGE)).status_code == 400
    assert (await sender.send("shop/redact", MERGE)).status_code == 400
    assert (await sender.send("app/uninstalled", MERGE)).status_code == 400
    # Not signed with the app's secret, or not signed at all.
    assert (await sender.send("customers/merge", MERGE, secret="forged")).status_code == 401
    assert (await sender.send("customers/merge", MERGE, signature="")).status_code == 401
    # The generic endpoint with the topic from the header takes it too, and checks it as strictly.
    assert (await sender.send("customers/merge", FAILED, path="/webhooks")).status_code == 200
    assert (await sender.send("customers/merge", SHOP_REDACT, path="/webhooks")).status_code == 400
    assert await counts(db) == (0, 1)


async def test_the_shop_comes_from_the_header_and_must_be_one(sender: Sender, db: Database) -> None:
    """The body names no shop; the header's is taken, validated, and required."""
    missing = await sender.send("customers/merge", MERGE, shop=None)
    assert missing.status_code == 400 and "X-Shopify-Shop-Domain" in missing.json()["status"]
    assert (await sender.send("customers/merge", MERGE, shop="evil.example.com")).status_code == 400
    assert await _merges(db) == []
    assert (await sender.send("customers/merge", MERGE, shop="Other-Shop.myshopify.com")).status_code == 200
    assert [m.shop_domain for m in await _merges(db)] == ["other-shop.myshopify.com"]


def test_payload_model_reads_the_ids_from_the_gids() -> None:
    merge = parse("customers/merge", body_of(MERGE))
    assert isinstance(merge, CustomersMerge)
    assert (merge.kept_id, merge.deleted_id, merge.completed) == (1, 2, True)
    failed = parse("customers/merge", body_of(FAILED))
    assert isinstance(failed, CustomersMerge) and not failed.completed
    shouted = parse("customers/merge", body_of({**MERGE, "status": "COMPLETED"}))
    assert isinstance(shouted, CustomersMerge) and shouted.completed
    with pytest.raises(PayloadError, match="not a gid"):
        parse(
            "customers/merge",
            body_of({**MERGE, "admin_graphql_api_customer_kept_id": f"gid://shopify/Customer/{2**64}"}),
        )
