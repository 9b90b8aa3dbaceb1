"""Sendcloud: parcels found by order and tracking number (there is no e-mail filter). A parcel
without a label is deleted by the cancel call; a labelled one is only cancelled and stays at
Sendcloud, so its erasure is then requested by e-mail.

API: https://panel.sendcloud.sc/api/v2, HTTP Basic `public_key:secret_key` (sendcloud.dev, v2
parcels OpenAPI). `POST /parcels/{id}/cancel` cancels an announced parcel or deletes an unannounced
one: 200 cancelled, 202 cancellation queued, 400 rejected (already cancelled, delivered, or more
than 42 days after announcing), 404 unknown, 410 deleted (its announcement had failed).
GET 1000/min; writes 100/min, burst 15/s.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiWithEmailAdapter, order_numbers
from adapters.base import Outcome, ProviderConfig, Result, Verification
from adapters.email_request import EmailRequestConfig
from adapters.http import Endpoints, RateLimit
from plugin.holdings import Category, Holding, Subject


class SendcloudConfig(EmailRequestConfig, ProviderConfig):
    public_key: str = Field(min_length=1, description="Sendcloud API public key (Settings → Integrations).")
    secret_key: SecretStr = Field(description="Sendcloud API secret key of the same integration.")
    endpoints = Endpoints(production="https://panel.sendcloud.sc/api/v2")


class Sendcloud(ApiWithEmailAdapter):
    name = "sendcloud"
    title = "Sendcloud"
    category = Category.SHIPMENT
    Config = SendcloudConfig
    description = (
        "Deletes parcels without a label; cancels labelled ones and asks Sendcloud by e-mail to erase them."
    )
    country = "NL"
    privacy_address = None  # not published: see https://www.sendcloud.com/privacy-statement
    key_field = "secret_key"
    auth_settings = ("public_key", "secret_key")
    verification = Verification()  # its `find` asks the provider itself
    rate_limits = (
        RateLimit(1000, 60.0, scope="read"),
        RateLimit(100, 60.0, scope="write"),
        RateLimit(15, 1.0, scope="write"),
    )

    def auth(self) -> httpx.Auth:
        assert isinstance(self.config, SendcloudConfig)
        return httpx.BasicAuth(self.config.public_key, self._secret())

    async def check(self) -> None:
        await self.call("GET", "/user", absent=(), scope="read")

    async def _parcels(self, subject: Subject) -> list[dict[str, Any]]:
        queries = [{"order_number": number} for number in order_numbers(subject)]
        queries += [{"tracking_number": s.tracking_number} for s in subject.shipments if s.tracking_number]
        found: dict[str, dict[str, Any]] = {}
        for params in queries:
            body = await self.call_json("GET", "/parcels", params=params, scope="read")
            for parcel in (body or {}).get("parcels", []):
                found[str(parcel["id"])] = parcel
        return list(found.values())

    async def find(self, subject: Subject) -> list[Holding]:
        # The ref carries what the erasure request must cite: announced parcels have a tracking
        # number (a label); unannounced ones have none yet.
        return [
            Holding(
                self.name,
                self.category,
                f"parcel:{p['id']}:{p.get('order_number') or ''}:{p.get('tracking_number') or ''}",
                f"Sendcloud parcel, order {p.get('order_number') or '?'}",
            )
            for p in await self._parcels(subject)
        ]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        _, parcel_id, order, tracking = holding.ref.split(":", 3)
        if tracking and self.ctx.email is not None:
            self.address()  # fail before cancelling when no privacy address is set
        # 400: already cancelled, delivered or too old to cancel; the data is still at Sendcloud.
        response = await self.call("POST", f"/parcels/{parcel_id}/cancel", accept=(400, 410), scope="write")
        if response is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=parcel_id)
        if response.status_code == 410 or (not tracking and response.is_success):
            return Result(Outcome.ERASED, provider_ref=parcel_id, detail="parcel without a label deleted")
        if response.status_code == 202:
            done = "label cancellation queued"
        else:
            done = "label cancelled" if response.is_success else "too late to cancel the label"
        if self.ctx.email is None and response.is_success:
            return Result(Outcome.CANCELLED, provider_ref=parcel_id, detail=done)
        shipments = self.subject_shipments(subject, tracking=tracking, order=order)
        return await self.request_by_email(subject, shipments, done=done)

    async def export(self, subject: Subject) -> dict[str, Any]:
        return await self.received(subject, parcels=await self._parcels(subject))
