"""Shipmondo (Denmark): sales orders found by the customer's e-mail and the shop's order number,
and deleted (Shipmondo cannot restore them).

API: https://app.shipmondo.com/api/public/v3, HTTP Basic `api_user:api_key` (shipmondo-cli's
bundled OpenAPI). A second DELETE answers 404 `{"error":"Resource not found"}`: already absent.
Shipments themselves can only be cancelled, not deleted, so they are left to the carriers' adapters.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter, order_numbers
from adapters.base import Outcome, ProviderConfig, Result
from adapters.http import Endpoints, RateLimit
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category, Holding, Subject


class ShipmondoConfig(ProviderConfig):
    api_user: str = Field(min_length=1, description="Shipmondo API user (Settings → API → Access).")
    api_key: SecretStr = Field(description="Shipmondo API key belonging to that API user.")
    endpoints = Endpoints(
        production="https://app.shipmondo.com/api/public/v3",
        sandbox="https://sandbox.shipmondo.com/api/public/v3",
    )


class Shipmondo(ApiAdapter[ShipmondoConfig]):
    name = "shipmondo"
    title = "Shipmondo"
    category = Category.SHIPMENT
    description = "Finds sales orders by e-mail and order number and deletes them."
    auth_settings = ("api_user", "api_key")
    recipient = Recipient(
        "Shipmondo ApS",
        "DK",
        ("https://shipmondo.com/se/saekerhet/villkor/", NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    )
    # No published quota (429 is documented without numbers): stay well below any sensible limit.
    rate_limits = (RateLimit(5, 1.0),)

    def auth(self) -> httpx.Auth:
        return httpx.BasicAuth(self.config.api_user, self._secret())

    async def check_api(self) -> None:
        await self.call("GET", "/sales_orders", absent=(), params={"per_page": 1})

    async def _sales_orders(self, subject: Subject) -> dict[str, dict[str, Any]]:
        queries: list[dict[str, str]] = []
        if subject.email:
            queries += [{"ship_to_email": subject.email}, {"bill_to_email": subject.email}]
        queries += [{"order_id": number} for number in order_numbers(subject)]
        found: dict[str, dict[str, Any]] = {}
        for params in queries:
            for order in await self.call_json("GET", "/sales_orders", params=params) or []:
                found[str(order["id"])] = order
        return found

    async def find(self, subject: Subject) -> list[Holding]:
        return [
            Holding(
                self.name,
                Category.SHIPMENT,
                f"sales_order:{key}",
                f"Shipmondo sales order {order.get('order_id', key)}",
            )
            for key, order in (await self._sales_orders(subject)).items()
        ]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        order_id = holding.ref.removeprefix("sales_order:")
        done = await self.call("DELETE", f"/sales_orders/{order_id}")
        return Result(Outcome.ERASED if done else Outcome.ALREADY_ABSENT, provider_ref=order_id)

    async def export(self, subject: Subject) -> dict[str, Any]:
        orders = await self._sales_orders(subject)
        return {"sales_orders": list(orders.values())} if orders else {}
