"""DHL Parcel DE (Paket Deutschland): shipments cancelled through the Parcel DE Shipping API v2
while they are not yet in the daily manifest ("Tagesabschluss"); once manifested, erasure is
requested from DHL Group's data protection office by e-mail.

API: https://api-eu.dhl.com/parcel/de/shipping/v2, header `dhl-api-key` plus HTTP Basic with the
business customer portal user (OAS 2.1.8 in netresearch/sdk-api-parcel-de).
`DELETE /orders?profile=…&shipment=…` answers 200 (one) or 207 (several) with a status per item
(`sstatus.status`, formerly `statusCode`); an unknown or already deleted number is item status 400
"Unknown shipment number": already absent. `GET /` needs no credentials, so the connection check
asks for the documents of a made-up shipment instead. There is no look-up by recipient: the
shipments come from Shopify's fulfillments.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter
from adapters.base import Outcome, ProviderConfig, Result
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.http import Endpoints, RateLimit
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category, Holding, Subject


class DhlParcelDeConfig(EmailRequestConfig, ProviderConfig):
    api_key: SecretStr = Field(description="API key of your app on developer.dhl.com (Parcel DE Shipping).")
    username: str = Field(
        min_length=1, description="DHL business customer portal user (Geschäftskundenportal)."
    )
    password: SecretStr = Field(description="Password of that portal user.")
    profile: str = Field(
        "STANDARD_GRUPPENPROFIL", description="User group profile the shipments were created in."
    )
    endpoints = Endpoints(
        production="https://api-eu.dhl.com/parcel/de/shipping/v2",
        sandbox="https://api-sandbox.dhl.com/parcel/de/shipping/v2",
    )


def _item_status(body: dict[str, Any], number: str) -> dict[str, Any]:
    items = body.get("items") or []
    item = next((i for i in items if str(i.get("shipmentNo")) == number), items[0] if items else {})
    status: dict[str, Any] = item.get("sstatus") or body.get("status") or {}
    return status


class DhlParcelDe(ApiAdapter[DhlParcelDeConfig]):
    name = "dhl_parcel_de"
    title = "DHL Parcel DE (Paket)"
    category = Category.SHIPMENT
    description = "Cancels shipments before the daily manifest; asks DHL by e-mail about manifested ones."
    mail = EmailRequests(country="DE", address="datenschutz@dpdhl.com")
    carrier_aliases = ("dhl paket", "dhl parcel de", "dhl parcel germany")
    recipient = Recipient(
        "DHL Paket GmbH",
        "DE",
        ("https://dhl.de/en/toolbar/footer/datenschutz.html", NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    )
    can_export = False
    auth_settings = ("api_key", "username", "password")
    rate_limits = (RateLimit(5, 1.0),)  # no published quota; DHL answers 429 when exceeded

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "dhl-api-key": self._secret()}

    def auth(self) -> httpx.Auth:
        return httpx.BasicAuth(self.config.username, self.config.password.get_secret_value())

    async def check_api(self) -> None:
        # Any answer but 401/403 (here 400 or 404 for the unknown number) means both the API key
        # and the portal user were accepted.
        await self.call("GET", "/orders", params={"shipment": "0"}, accept=(207, 400))

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        own = self.mail.own_shipment(self, subject, holding)
        number = own.tracking_number
        if number is None:  # nothing to cancel by
            return await self.mail.request(
                self, subject, self.mail.cited(self, subject, own), done="no shipment number"
            )
        params = {"profile": self.config.profile, "shipment": number}
        response = await self.call("DELETE", "/orders", params=params, accept=(207, 400))
        status = _item_status(response.json() if response is not None and response.content else {}, number)
        words = f"{status.get('title', '')} {status.get('detail', '')}".replace(" ", "").lower()
        if response is None or "unknownshipmentnumber" in words:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=number)
        if status.get("status", status.get("statusCode", response.status_code)) == 200:
            return Result(
                Outcome.CANCELLED, provider_ref=number, detail="cancelled before the daily manifest"
            )
        # Manifested (or refused otherwise): DHL keeps the data as controller, so ask it to erase.
        return await self.mail.request(
            self, subject, self.mail.cited(self, subject, own), done="too late to cancel (already manifested)"
        )

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await self.mail.received(self, subject)
