"""Omnisend: contacts found by e-mail and unsubscribed through the API; the Contacts API
(2026-03-15) has no DELETE for contacts, so deletion is then requested from Omnisend by e-mail.

API: https://api.omnisend.com/api, `Authorization: Omnisend-API-Key <key>` and the required
`Omnisend-Version` header (a retired version answers 410). 400 requests a minute per brand; a 429
says how long to wait in the body's `retryAfter`, not necessarily in a header.

Reduce (a contact the retention rule keeps as a suppression entry): `GET /contacts/{id}` (404:
already absent), then `PATCH /contacts/{id}` setting every still `subscribed` channel of each
identifier (e-mail, SMS) to `unsubscribed`; the addresses come from the contact itself, so no
subject address is needed. Nothing subscribed: nothing sent. No deletion request is e-mailed: the
contact is the suppression entry the rule keeps. The Contacts API documents setting fields, not
clearing them, so the contact's fields stay and the result names them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiWithEmailAdapter
from adapters.base import Outcome, ProviderConfig, Result, Verification, suppressed_only
from adapters.email_request import EmailRequestConfig
from adapters.http import Endpoints, RateLimit
from plugin.holdings import Category, Holding, Shipment, Subject

API_VERSION = "2026-03-15"

# Omnisend (UAB Omnisend, Vilnius) reads English; the carriers' templates speak of shipments.
REQUEST_SUBJECT = "Request to delete a contact (GDPR Art. 17), ref. {reference}"
REQUEST_BODY = (
    "Hello,\n\n"
    "We are {shop_name} ({shop_domain}) and use Omnisend as our processor for e-mail marketing. One "
    "of our subscribers has asked for their personal data to be erased (GDPR Art. 17). We have "
    "unsubscribed the contact through your API, which cannot delete contacts. Please delete the "
    "contact below from our brand, with its consents, events and custom properties.\n\n"
    "Contact: {email}\n\n"
    "Please confirm to {reply_to} within one month (Art. 12(3)), quoting our reference {reference}.\n\n"
    "Kind regards\n{shop_name}\n"
)


def _retry_after_body(response: httpx.Response) -> float | None:
    try:
        value = response.json().get("retryAfter")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class OmnisendConfig(EmailRequestConfig, ProviderConfig):
    api_key: SecretStr = Field(
        description="Omnisend API key with contacts read/write (Store settings → API keys)."
    )
    endpoints = Endpoints(production="https://api.omnisend.com/api")


class Omnisend(ApiWithEmailAdapter):
    name = "omnisend"
    title = "Omnisend"
    category = Category.NEWSLETTER
    Config = OmnisendConfig
    description = "Unsubscribes the contact through the API, then asks Omnisend by e-mail to delete it."
    country = "LT"
    privacy_address = "info@omnisend.com"  # the contact its data processing agreement gives
    verification = Verification()  # its `find` asks the provider itself
    rate_limits = (RateLimit(400, 60.0),)
    can_reduce = True

    def retry_after(self, response: httpx.Response) -> float | None:
        return _retry_after_body(response)

    def headers(self) -> dict[str, str]:
        return {
            "Accept": "application/json",
            "Authorization": f"Omnisend-API-Key {self._secret()}",
            "Omnisend-Version": API_VERSION,
        }

    def render(self, subject: Subject, shipments: list[Shipment]) -> tuple[str, str]:
        values = {
            "shop_name": self.ctx.shop.name,
            "shop_domain": self.ctx.shop.domain,
            "email": subject.email or "-",
            "reply_to": self.ctx.shop.contact_email or self.ctx.shop.domain,
            "reference": "{reference}",
        }
        return REQUEST_SUBJECT.format_map(values), REQUEST_BODY.format_map(values)

    async def check(self) -> None:
        await self.call("GET", "/contacts", absent=(), params={"limit": 1})

    async def _contact(self, subject: Subject) -> dict[str, Any] | None:
        if not subject.email:
            return None
        body = await self.call_json("GET", f"/contacts?email={quote(subject.email, safe='')}")
        contacts: list[dict[str, Any]] = (body or {}).get("contacts") or []
        return contacts[0] if contacts else None

    async def find(self, subject: Subject) -> list[Holding]:
        found = await self._contact(subject)
        if not found:
            return []
        return [Holding(self.name, self.category, f"contact:{found['id']}", "Omnisend contact")]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        contact_id = holding.ref.removeprefix("contact:")
        if not subject.email:
            return Result(
                Outcome.ALREADY_ABSENT, provider_ref=contact_id, detail="no e-mail address to erase"
            )
        channels = {"email": {"status": "unsubscribed"}}
        body = {"identifiers": [{"type": "email", "id": subject.email, "channels": channels}]}
        if await self.call("PATCH", f"/contacts/{contact_id}", json=body) is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=contact_id)
        if self.ctx.email is None:
            return Result(
                Outcome.SUPPRESSED, contact_id, "unsubscribed; delete the contact in Omnisend by hand"
            )
        return await self.request_by_email(subject, [], done="unsubscribed through the API")

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        contact_id = holding.ref.removeprefix("contact:")
        contact = await self.call_json("GET", f"/contacts/{contact_id}")
        if contact is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=contact_id)
        identifiers = _unsubscribed_identifiers(contact)
        path = f"/contacts/{contact_id}"
        if identifiers and await self.call("PATCH", path, json={"identifiers": identifiers}) is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=contact_id)
        why = "the Contacts API has no DELETE and documents no call that clears fields"
        return suppressed_only(fields, contact_id, "unsubscribed from every channel in Omnisend", why)

    async def export(self, subject: Subject) -> dict[str, Any]:
        found = await self._contact(subject)
        return {"contact": found} if found else {}


def _unsubscribed_identifiers(contact: dict[str, Any]) -> list[dict[str, Any]]:
    """The contact's identifiers with each still subscribed channel set to unsubscribed (the
    PATCH body's shape); empty when no channel is subscribed any more."""
    changed = []
    for identifier in contact.get("identifiers") or []:
        channels = identifier.get("channels") or {}
        subscribed = [
            name for name, channel in channels.items() if (channel or {}).get("status") == "subscribed"
        ]
        if subscribed and identifier.get("type") and identifier.get("id"):
            changed.append(
                {
                    "type": identifier["type"],
                    "id": identifier["id"],
                    "channels": {name: {"status": "unsubscribed"} for name in subscribed},
                }
            )
    return changed
