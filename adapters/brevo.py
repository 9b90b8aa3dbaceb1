"""Brevo (ex-Sendinblue): contacts found by e-mail, deleted for good.

API: https://api.brevo.com/v3, header `api-key` (developers.brevo.com). Deleting an unknown
contact answers 404 `document_not_found`, which counts as already absent. A 429 carries no
Retry-After; `x-sib-ratelimit-reset` says when the window resets.

No retention sweep (`can_sweep` stays off): Get all contacts shows `emailBlacklisted` but not when
the contact unsubscribed or bounced, and `modifiedAt` moves on any update (Brevo's changelog,
2026-10-14); a contact's unsubscription and bounce events come only from its statistics, at most
90 days a call (Get email campaigns' statistics for a contact). Erase needs no address: the
holding names the contact id.

Reduce (the retention rule keeps only a suppression entry): `PUT /contacts/{id}` with
`emailBlacklisted` and `smsBlacklisted` true (Update a contact, by contact id), never DELETE:
deleting a contact loses its blocklist status, so it could be re-imported and mailed (Brevo help
centre, "Why not delete contacts who are blocklisted?"). Update a contact documents setting
attributes, not clearing them, so the contact's fields stay and the result names them. Setting both
flags again changes nothing, and an unknown contact answers 404: already absent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter
from adapters.base import Outcome, ProviderConfig, Result, suppressed_only
from adapters.http import Endpoints, RateLimit
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category, Holding, Subject


def _reset_header(response: httpx.Response) -> float | None:
    value = response.headers.get("x-sib-ratelimit-reset")
    try:
        return float(value) if value else None
    except ValueError:
        return None


class BrevoConfig(ProviderConfig):
    api_key: SecretStr = Field(description="Brevo API v3 key (SMTP & API → API keys), not the SMTP key.")
    endpoints = Endpoints(production="https://api.brevo.com/v3")


class Brevo(ApiAdapter[BrevoConfig]):
    name = "brevo"
    title = "Brevo"
    category = Category.NEWSLETTER
    description = "Finds the contact by e-mail and deletes it (synchronous); reduce blocklists it."
    can_reduce = True
    recipient = Recipient(
        "Sendinblue SAS (Brevo)",
        "FR",
        ("https://www.brevo.com/legal/termsofuse/", NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    )
    # General tier: /v3/contacts 10 req/s and 36,000 req/h; unlisted endpoints 100 req/h.
    rate_limits = (
        RateLimit(10, 1.0, scope="contacts"),
        RateLimit(36_000, 3600.0, scope="contacts"),
        RateLimit(100, 3600.0, scope="other"),
    )

    def retry_after(self, response: httpx.Response) -> float | None:
        return _reset_header(response)

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "api-key": self._secret()}

    async def check_api(self) -> None:
        await self.call("GET", "/account", absent=(), scope="other")

    async def _contact(self, subject: Subject) -> dict[str, Any] | None:
        if not subject.email:
            return None
        path = f"/contacts/{quote(subject.email, safe='')}?identifierType=email_id"
        found: dict[str, Any] | None = await self.call_json("GET", path, scope="contacts")
        return found

    async def find(self, subject: Subject) -> list[Holding]:
        found = await self._contact(subject)
        if not found:
            return []
        return [Holding(self.name, Category.NEWSLETTER, f"contact:{found['id']}", "Brevo contact")]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        contact_id = holding.ref.removeprefix("contact:")
        path = f"/contacts/{contact_id}?identifierType=contact_id"
        done = await self.call("DELETE", path, scope="contacts")
        return Result(Outcome.ERASED if done else Outcome.ALREADY_ABSENT, provider_ref=contact_id)

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        contact_id = holding.ref.removeprefix("contact:")
        path = f"/contacts/{contact_id}?identifierType=contact_id"
        body = {"emailBlacklisted": True, "smsBlacklisted": True}
        if await self.call("PUT", path, scope="contacts", json=body) is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=contact_id)
        why = "deleting the contact would drop its blocklist; Brevo documents no call that clears attributes"
        return suppressed_only(fields, contact_id, "blocklisted for e-mail and SMS in Brevo", why)

    async def export(self, subject: Subject) -> dict[str, Any]:
        found = await self._contact(subject)
        return {"contact": found} if found else {}
