"""Voyado Engage (Nordic retail CRM): contacts found by e-mail, deleted.

API: https://<tenant>.voyado.com/api/v2, header `apikey`; Engage answers 500 unless every call
carries a `User-Agent: <system>/<version>` (developer.voyado.com). 429 above 200 requests a second
per key; Voyado asks integrations to stay under 50.

Reduce (a contact the retention rule keeps as a suppression entry): `POST
/api/v2/contacts/{id}/unsubscribeEmail` (provider-apis.md §1.6 (b)), never DELETE; a 404 is
already absent. Voyado documents no answer for a repeat; unsubscribing twice leaves it unsubscribed.
Voyado documents neither a call that clears a contact's fields nor whether DELETE keeps the
unsubscription, so the fields stay and the result names them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter
from adapters.base import HostLabel, Outcome, ProviderConfig, Result, suppressed_only
from adapters.http import Endpoints, RateLimit
from adapters.recipients import Recipient
from plugin.holdings import Category, Holding, Subject

USER_AGENT = "Gallra/0.1"


class VoyadoConfig(ProviderConfig):
    api_key: SecretStr = Field(description="Engage API key (Voyado support issues it per tenant).")
    tenant: HostLabel = Field(description="Your Engage tenant: mybrand for https://mybrand.voyado.com.")
    endpoints = Endpoints(
        production="https://{tenant}.voyado.com", staging="https://{tenant}.staging.voyado.com"
    )


class Voyado(ApiAdapter[VoyadoConfig]):
    name = "voyado"
    title = "Voyado Engage"
    category = Category.NEWSLETTER
    description = "Finds the contact by e-mail and deletes it; reduce unsubscribes it from e-mail."
    can_reduce = True
    recipient = Recipient(
        "Voyado AB",
        "SE",
        (
            "https://voyado.com/legal/dpa",
            "not confirmed: the legal name and Swedish seat (the DPA names the Swedish supervisory "
            "authority and provides for sub-processors certified under the EU-US DPF)",
        ),
        unconfirmed=("legal_name", "country", "transfers"),
    )
    rate_limits = (RateLimit(50, 1.0),)

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "apikey": self._secret(), "User-Agent": USER_AGENT}

    async def check_api(self) -> None:
        # The documented look-up with a reserved (.invalid) address: 404 means the key was accepted.
        await self.call("GET", "/api/v2/contacts/id", params={"email": "connection-check@gallra.invalid"})

    async def _contact_id(self, subject: Subject) -> str | None:
        if not subject.email:
            return None
        found = await self.call_json("GET", f"/api/v2/contacts/id?email={quote(subject.email, safe='')}")
        return str(found) if found else None

    async def find(self, subject: Subject) -> list[Holding]:
        contact_id = await self._contact_id(subject)
        if not contact_id:
            return []
        return [Holding(self.name, Category.NEWSLETTER, f"contact:{contact_id}", "Voyado contact")]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        contact_id = holding.ref.removeprefix("contact:")
        done = await self.call("DELETE", f"/api/v2/contacts/{contact_id}")
        return Result(Outcome.ERASED if done else Outcome.ALREADY_ABSENT, provider_ref=contact_id)

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        contact_id = holding.ref.removeprefix("contact:")
        if await self.call("POST", f"/api/v2/contacts/{contact_id}/unsubscribeEmail") is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=contact_id)
        why = "Voyado documents no call that clears them, nor whether deletion keeps the unsubscription"
        return suppressed_only(fields, contact_id, "unsubscribed from e-mail in Voyado", why)

    async def export(self, subject: Subject) -> dict[str, Any]:
        contact_id = await self._contact_id(subject)
        if not contact_id:
            return {}
        return {"contact": await self.call_json("GET", f"/api/v2/contacts/{contact_id}")}
