"""PostNord (SE/DK/NO/FI): no erasure API, so an Art. 17 request e-mailed to its data protection
officer (provider-apis.md §2.1). With an API key, the access report also carries PostNord's
track-and-trace record of each shipment."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from adapters.base import Adapter, ProviderConfig
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.http import Endpoints, RateLimit, credential_fingerprint
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category, Subject


class PostNordConfig(EmailRequestConfig, ProviderConfig):
    api_key: SecretStr | None = Field(
        default=None,
        description="Optional PostNord developer API key; adds PostNord's tracking record of each "
        "shipment to access reports.",
    )
    endpoints = Endpoints(production="https://api2.postnord.com", test="https://atapi2.postnord.com")


class PostNord(Adapter[PostNordConfig]):
    name = "postnord"
    title = "PostNord"
    category = Category.SHIPMENT
    description = "Erasure requests e-mailed to PostNord's data protection officer."
    # The group's DPO page is Swedish (postnord.com/sv/om-oss/gdpr).
    mail = EmailRequests(country="SE", address="dataprotectionofficer@postnord.com")
    carrier_aliases = (
        "postnord",
        "postnord sverige",
        "postnord danmark",
        "postnord dk",
        "postnord se",
        "postnord norge",
        "postnord finland",
        "portal postnord",
        "post danmark",  # PostNord's Danish brand until 2020
        "postnord mypack",
    )
    recipient = Recipient(
        "PostNord Sverige AB",
        "SE",
        (
            "https://www.postnord.se/integritetspolicy",
            "https://postnord.com/privacy-policy",
            "not confirmed: which PostNord company carries outside Sweden (PostNord A/S, PostNord Oy)",
            NO_TRANSFER_LIST,
        ),
        unconfirmed=("transfers",),
    )
    # PostNord documents no limit; this is Gallra's own courtesy limit for the tracking look-ups.
    rate_limits = (RateLimit(5, 1.0),)

    def credential_key(self) -> str:
        key = self.config.api_key
        return credential_fingerprint(key.get_secret_value()) if key else "default"

    async def check_api(self) -> None:
        if self.config.api_key:
            await self._track("0")  # any answer but 401/403 means the key is accepted

    async def export(self, subject: Subject) -> dict[str, Any]:
        exported = await self.mail.export(self, subject)
        if self.config.api_key:
            for shipment in exported.get("shipments", ()):
                if shipment["tracking_number"]:
                    shipment["postnord_tracking"] = await self._track(shipment["tracking_number"])
        return exported

    async def _track(self, item_id: str) -> Any:
        key = self.config.api_key
        assert key is not None  # only called with a key
        response = await self.ctx.http.request(
            self.name,
            "GET",
            self.config.root() + "/rest/shipment/v5/trackandtrace/findByIdentifier.json",
            params={"id": item_id, "locale": "en", "apikey": key.get_secret_value()},
            credential=self.credential_key(),
            limits=self.rate_limits,
            auth_hint="the setting `api_key`",
            custom=self.config.custom,
        )
        if response.status_code == 404 or not response.is_success:
            return None
        return response.json()
