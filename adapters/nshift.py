"""nShift Delivery (ex-Unifaun Online): stored, not yet printed shipments found by order number
and deleted through the API; printed shipments cannot be deleted through it, so their erasure is
requested by e-mail.

API: https://api.unifaun.com/rs-extapi/v1, `Authorization: Bearer <key id>-<key secret>`
(Unifaun REST API RAML). `GET /stored-shipments` searches `orderNo` and returns at most 50;
`DELETE /stored-shipments/{id}` answers 204, or 404 when it is gone. The merchant is controller and
nShift processor: printed shipments are kept for the current year plus one (Standard) or seven
(Premium) years and can also be deleted by hand in the nShift Portal.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from adapters._rest import ApiWithEmailAdapter, order_numbers
from adapters.base import Outcome, ProviderConfig, Result, Verification
from adapters.email_request import EmailRequestConfig
from adapters.http import Endpoints, RateLimit
from plugin.holdings import Category, Holding, Subject


class NShiftConfig(EmailRequestConfig, ProviderConfig):
    api_key_id: str = Field(min_length=1, description="nShift Delivery API key id (Maintenance → API keys).")
    api_key_secret: SecretStr = Field(description="The secret shown once when the API key was created.")
    endpoints = Endpoints(
        production="https://api.unifaun.com/rs-extapi/v1", legacy="https://www.unifaunonline.se/rs-extapi/v1"
    )


class NShift(ApiWithEmailAdapter):
    name = "nshift"
    title = "nShift Delivery"
    category = Category.SHIPMENT
    Config = NShiftConfig
    description = (
        "Deletes stored (unprinted) shipments by order number; asks nShift by e-mail about printed ones."
    )
    country = "SE"
    privacy_address = "dpo@unifaun.com"  # datenanfragen/data, 2021
    key_field = "api_key_secret"
    auth_settings = ("api_key_id", "api_key_secret")
    verification = Verification()  # its `find` asks the provider itself
    rate_limits = (RateLimit(5, 1.0),)  # no published quota for stored shipments

    @property
    def nshift(self) -> NShiftConfig:
        assert isinstance(self.config, NShiftConfig)
        return self.config

    def headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Authorization": f"Bearer {self.nshift.api_key_id}-{self._secret()}",
        }

    async def check(self) -> None:
        await self.call("GET", "/stored-shipments", absent=(), params={"status": "ready"})

    async def _stored(self, subject: Subject) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for number in order_numbers(subject):
            params = {"searchField": "orderNo", "searchOp": "equals", "searchValue": number}
            for shipment in await self.call_json("GET", "/stored-shipments", params=params) or []:
                found[str(shipment["id"])] = shipment
        return list(found.values())

    async def find(self, subject: Subject) -> list[Holding]:
        holdings = [
            Holding(
                self.name,
                self.category,
                f"stored:{s['id']}",
                f"nShift stored shipment, order {s.get('orderNo')}",
            )
            for s in await self._stored(subject)
        ]
        printed = order_numbers(subject, shipped_only=True)
        if printed:
            label = "nShift printed shipments, orders " + ", ".join(printed)
            holdings.append(Holding(self.name, self.category, "printed:" + ",".join(printed), label))
        return holdings

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        kind, _, key = holding.ref.partition(":")
        if kind == "stored":
            done = await self.call("DELETE", f"/stored-shipments/{key}")
            return Result(Outcome.ERASED if done else Outcome.ALREADY_ABSENT, provider_ref=key)
        shipments = [s for number in key.split(",") for s in self.subject_shipments(subject, order=number)]
        return await self.request_by_email(
            subject, shipments, done="printed shipments cannot be deleted by API"
        )

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await self.received(subject, stored_shipments=await self._stored(subject))
