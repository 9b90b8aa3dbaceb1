"""`gallra simulate`: send a signed, documented webhook to a running Gallra, as Shopify would."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer

from plugin.intake.payloads import TOPICS
from plugin.intake.signature import sign
from plugin.settings import Settings, load_settings

DEFAULT_API_VERSION = "2026-01"
ATTEMPTS = 4


def build_payload(
    topic: str, shop: str, customer_id: int | None, email: str | None, phone: str | None, orders: list[int]
) -> dict[str, Any]:
    """The payload Shopify documents for `topic` (shopify.dev privacy-law-compliance)."""
    # The same shop always has the same id, so repeating a simulation is a duplicate, as it would be.
    shop_id = int(hashlib.sha256(shop.encode()).hexdigest()[:8], 16)
    customer = {"id": customer_id, "email": email, "phone": phone}
    if topic == "customers/data_request":
        return {
            "shop_id": shop_id,
            "shop_domain": shop,
            "orders_requested": orders,
            "customer": customer,
            "data_request": {"id": random.randint(1, 10**9)},
        }
    if topic == "customers/redact":
        return {"shop_id": shop_id, "shop_domain": shop, "customer": customer, "orders_to_redact": orders}
    if topic == "shop/redact":
        return {"shop_id": shop_id, "shop_domain": shop}
    return {"id": shop_id, "domain": shop, "myshopify_domain": shop}


def signed_request(settings: Settings, topic: str, body: bytes, shop: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, settings.shopify_api_secret.get_secret_value()),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": settings.shopify_api_version or DEFAULT_API_VERSION,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
    }


async def post_with_retries(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST, retrying connection errors and 503 with backoff and jitter (honouring Retry-After).

    Safe to repeat: the same webhook id is sent each time, so the app stores it once.
    """
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0)) as client:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.TransportError:
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * 2**attempt * random.uniform(0.5, 1.5))
                continue
            if response.status_code not in {429, 503} or attempt == ATTEMPTS:
                return response
            retry_after = response.headers.get("retry-after", "")
            wait = float(retry_after) if retry_after.isdigit() else 0.5 * 2**attempt
            await asyncio.sleep(min(wait, 30.0) * random.uniform(1.0, 1.2))
    raise AssertionError("unreachable")


def simulate(
    topic: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(TOPICS))}.")],
    shop: Annotated[str, typer.Option(help="The shop's *.myshopify.com domain.")],
    customer_id: Annotated[int | None, typer.Option(help="Customer ID (customers/* topics).")] = None,
    email: Annotated[str | None, typer.Option(help="Customer e-mail (customers/* topics).")] = None,
    phone: Annotated[str | None, typer.Option(help="Customer phone (customers/* topics).")] = None,
    orders: Annotated[str, typer.Option(help="Comma-separated order IDs, e.g. 1001,1002.")] = "",
    url: Annotated[
        str | None, typer.Option(help="Base URL of the running app (default http://GALLRA_HOST:GALLRA_PORT).")
    ] = None,
) -> None:
    """Send a signed webhook as Shopify would; print the HTTP status and the ledger request id."""
    if topic not in TOPICS:
        raise typer.BadParameter(
            f"unknown topic; choose one of {', '.join(sorted(TOPICS))}", param_hint="TOPIC"
        )
    try:
        order_ids = [int(part) for part in orders.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("orders must be comma-separated numbers", param_hint="--orders") from None
    settings = load_settings()
    if url is None:
        host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host  # noqa: S104
        url = f"http://{host}:{settings.port}"
    payload = build_payload(topic, shop, customer_id, email, phone, order_ids)
    body = json.dumps(payload, separators=(",", ":")).encode()
    target = f"{url.rstrip('/')}/webhooks/{topic}"
    try:
        response = asyncio.run(post_with_retries(target, body, signed_request(settings, topic, body, shop)))
    except httpx.TransportError as exc:
        typer.echo(
            f"gallra: could not reach {target} ({type(exc).__name__}); is `gallra serve` running?", err=True
        )
        raise typer.Exit(1) from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    typer.echo(
        f"{topic} -> HTTP {response.status_code} {answer.get('status', '')}; "
        f"ledger request: {answer.get('request_id')}"
    )
    if response.status_code >= 300:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
