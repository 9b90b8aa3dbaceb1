"""Bulk operations: start a bulk query, wait for it, stream its JSONL result with bounded memory.

Shopify writes one JSON object per line; nodes of a nested connection are lines of their own that
carry `__parentId` (shopify-platform.md §4.5). With `groupObjects: true` children follow their parent,
so a parent and its children can be joined while holding one root object at a time. Since 2026-01
`groupObjects` defaults to false (faster, but children may come anywhere), so we ask for grouping only
when the query has nested connections.

FAILED and EXPIRED operations raise `BulkOperationFailed`; a failed operation's partial result is
streamed only when the caller allows it, and even then the failure is raised at the end so nobody
mistakes a partial list for a complete one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from adapters.http import DEFAULT_TIMEOUT, backoff_delay
from plugin.shopify.client import AdminClient, ShopifyUnavailable, raise_user_errors
from plugin.shopify.operations import parse_customer, parse_order, parse_time
from plugin.shopify.records import CustomerRecord, OrderRecord

log = logging.getLogger("gallra.shopify.bulk")

RUN_BULK_QUERY = """
mutation RunBulkQuery($query: String!, $groupObjects: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $groupObjects) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_STATUS = """
query BulkStatus($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl completedAt
  }
}
"""

# Bulk queries take no variables; the filter is embedded as a GraphQL string literal.
ORDERS_BULK = """
{
  orders%(args)s {
    edges {
      node {
        id name createdAt processedAt closedAt cancelledAt returnStatus
        disputes { status }
        customer { id }
        shippingAddress { countryCodeV2 }
        fulfillments {
          id status createdAt deliveredAt
          trackingInfo { company number url }
        }
      }
    }
  }
}
"""

CUSTOMERS_BULK = """
{
  customers {
    edges {
      node {
        id createdAt updatedAt numberOfOrders canDelete
        defaultEmailAddress { marketingState marketingUpdatedAt }
        defaultPhoneNumber { marketingState marketingUpdatedAt }
        lastOrder { createdAt }
      }
    }
  }
}
"""

TERMINAL = {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


class BulkOperationFailed(Exception):
    """The operation ended FAILED, CANCELED or EXPIRED (or its result file is gone)."""

    def __init__(self, status: str, error_code: str | None = None, *, partial: bool = False) -> None:
        self.status, self.error_code, self.partial = status, error_code, partial
        detail = f" ({error_code})" if error_code else ""
        extra = "; only partial data was read" if partial else ""
        super().__init__(f"bulk operation {status}{detail}{extra}")


@dataclass(frozen=True)
class BulkOperationInfo:
    id: str
    status: str
    error_code: str | None
    url: str | None
    partial_data_url: str | None
    object_count: int
    completed_at: datetime | None


@dataclass
class BulkNode:
    """One root object of a bulk result with its `__parentId` children (any depth, flattened)."""

    node: dict[str, Any]
    children: list[dict[str, Any]] = field(default_factory=list)


# `bulk_operations/finish` webhooks set these, so a waiting runner wakes up at once.
_finished: dict[str, asyncio.Event] = {}


def bulk_finished(operation_id: str) -> None:
    """Call from the `bulk_operations/finish` webhook handler with the payload's admin_graphql_api_id."""
    event = _finished.get(operation_id)
    if event is not None:
        event.set()


def has_nested_connection(query: str) -> bool:
    """True when an `edges`/`nodes` block sits inside another one (children become own lines)."""
    opened: list[bool] = []  # for each open brace: does it open a connection's edges/nodes?
    pending = False
    for part in re.findall(r"\bedges\b|\bnodes\b|[{}]", query):
        if part == "{":
            if pending and any(opened):
                return True
            opened.append(pending)
            pending = False
        elif part == "}":
            if opened:
                opened.pop()
        else:
            pending = True
    return False


async def start_bulk_query(client: AdminClient, query: str, *, group_objects: bool | None = None) -> str:
    grouped = has_nested_connection(query) if group_objects is None else group_objects
    result = await client.mutate(
        RUN_BULK_QUERY, {"query": query, "groupObjects": grouped}, "bulkOperationRunQuery"
    )
    operation = result.get("bulkOperation") or {}
    if not operation.get("id"):
        raise_user_errors("RunBulkQuery", [{"field": None, "message": "no operation", "code": "INVALID"}])
    return str(operation["id"])


async def bulk_status(client: AdminClient, operation_id: str) -> BulkOperationInfo:
    op = (await client.execute(BULK_STATUS, {"id": operation_id})).get("bulkOperation")
    if op is None:
        raise BulkOperationFailed("MISSING")
    return BulkOperationInfo(
        id=str(op["id"]),
        status=str(op["status"]),
        error_code=op.get("errorCode"),
        url=op.get("url"),
        partial_data_url=op.get("partialDataUrl"),
        object_count=int(op.get("objectCount") or 0),
        completed_at=parse_time(op.get("completedAt")),
    )


async def wait_for_bulk(
    client: AdminClient,
    operation_id: str,
    *,
    first_poll: float = 1.0,
    max_poll: float = 30.0,
    give_up_after: float = 6 * 3600.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> BulkOperationInfo:
    """Poll with exponential backoff (and jitter) until the operation ends; a `bulk_finished()` call
    for this operation cuts the current wait short."""
    event = _finished.setdefault(operation_id, asyncio.Event())
    waited, attempt = 0.0, 0
    try:
        while True:
            info = await bulk_status(client, operation_id)
            if info.status in TERMINAL:
                return info
            if waited >= give_up_after:
                raise ShopifyUnavailable(f"bulk operation still {info.status} after {give_up_after:.0f}s")
            attempt += 1
            delay = (
                min(max_poll, first_poll * 2 ** (attempt - 1)) / 2
                + backoff_delay(attempt, first_poll, max_poll) / 2
            )
            waited += delay
            if sleep is not None:
                await sleep(delay)
                continue
            try:
                await asyncio.wait_for(event.wait(), timeout=delay)
            except TimeoutError:
                pass
            event.clear()
    finally:
        _finished.pop(operation_id, None)


async def stream_jsonl(
    http: httpx.AsyncClient, url: str, *, max_attempts: int = 4
) -> AsyncIterator[dict[str, Any]]:
    """The result file line by line; never more than one line in memory. Connection problems before
    the first line are retried; a file that is gone (403/404, the URL lives 7 days) means EXPIRED."""
    for attempt in range(1, max_attempts + 1):
        started = False
        try:
            async with http.stream("GET", url, timeout=DEFAULT_TIMEOUT) as response:
                if response.status_code in (403, 404, 410):
                    raise BulkOperationFailed("EXPIRED", "RESULT_FILE_GONE")
                if response.status_code >= 500 or response.status_code == 429:
                    raise httpx.RemoteProtocolError(f"HTTP {response.status_code}")
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if line:
                        started = True
                        yield json.loads(line)
                return
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            if started or attempt == max_attempts:
                raise ShopifyUnavailable(f"bulk result download failed: {type(exc).__name__}") from None
            await asyncio.sleep(backoff_delay(attempt))


async def join_children(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[BulkNode]:
    """Root lines with their descendants (children follow their parent: grouped output)."""
    current: BulkNode | None = None
    family: set[str] = set()  # ids of the current root and its descendants
    async for line in lines:
        parent = line.pop("__parentId", None)
        if parent is None:
            if current is not None:
                yield current
            current = BulkNode(line)
            family = {str(line.get("id"))}
            continue
        if current is None or parent not in family:
            # Ungrouped output would land here: refuse rather than silently drop data.
            raise BulkOperationFailed("FAILED", "CHILD_WITHOUT_PARENT")
        current.children.append(line)
        if "id" in line:
            family.add(str(line["id"]))
    if current is not None:
        yield current


async def run_bulk_query(
    client: AdminClient,
    query: str,
    *,
    allow_partial: bool = False,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> AsyncIterator[BulkNode]:
    operation_id = await start_bulk_query(client, query)
    info = await wait_for_bulk(client, operation_id, sleep=sleep)
    log.info(
        "bulk operation %s on %s: %s, %d objects",
        operation_id,
        client.shop_domain,
        info.status,
        info.object_count,
    )
    if info.status != "COMPLETED":
        if info.status == "FAILED" and allow_partial and info.partial_data_url:
            async for node in join_children(stream_jsonl(client.http, info.partial_data_url)):
                yield node
            raise BulkOperationFailed(info.status, info.error_code, partial=True)
        raise BulkOperationFailed(info.status, info.error_code)
    if info.url is None:  # Shopify leaves url null when the query matched nothing
        return
    async for node in join_children(stream_jsonl(client.http, info.url)):
        yield node


def orders_bulk_query(query_filter: str | None = None) -> str:
    args = f"(query: {json.dumps(query_filter)})" if query_filter else ""
    return ORDERS_BULK % {"args": args}


def order_from_bulk(node: BulkNode) -> OrderRecord:
    # Fulfillments are a list on Order (inline); should they arrive as child lines they are joined too.
    extra = [c for c in node.children if str(c.get("id", "")).startswith("gid://shopify/Fulfillment/")]
    return parse_order(node.node, extra)


async def stream_orders(
    client: AdminClient,
    *,
    query_filter: str | None = None,
    allow_partial: bool = False,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> AsyncIterator[OrderRecord]:
    """Every order of the shop (or those matching Shopify search syntax, e.g. "created_at:<2016-01-01")
    with the fields retention needs. Needs read_all_orders for orders older than 60 days."""
    async for node in run_bulk_query(
        client, orders_bulk_query(query_filter), allow_partial=allow_partial, sleep=sleep
    ):
        yield order_from_bulk(node)


async def stream_customers(
    client: AdminClient,
    *,
    allow_partial: bool = False,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> AsyncIterator[CustomerRecord]:
    """Every customer with its last order date and marketing states (no contact data is fetched)."""
    async for node in run_bulk_query(client, CUSTOMERS_BULK, allow_partial=allow_partial, sleep=sleep):
        yield parse_customer(node.node)
