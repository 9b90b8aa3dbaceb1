"""Mailchimp Marketing (provider-apis.md §1.2): find the member across audiences, then
delete-permanent per audience. For the retention sweep, list every audience's unsubscribed and
cleaned (bounced) members with the date their status last changed.

Quirks: a plain `DELETE …/members/{hash}` only archives (reversible), so erasure is
`POST …/actions/delete-permanent`, once per audience. A second call, or an unknown member, answers
404 "Resource Not Found": already absent. Mailchimp limits concurrent connections (at most 10 per
user) rather than a rate, and sends no rate-limit headers, so calls share a small per-key pool.

A holding is one member in one audience, ref `member:<list id>:<subscriber hash>`: the hash is
Mailchimp's own member id, so erase needs no e-mail address (a sweep has none). Refs of the older
form `audience:<list id>` (still in ledgers) are erased with the subject's address.

Reduce (the retention rule keeps only a suppression entry) is the same delete-permanent call:
Mailchimp then refuses to re-import the address ("Forgotten Email Not Subscribed", §1.2 (c)), so it
keeps exactly the block the rule asks for, while the member's merge fields and activity go.

Sweep listing (`GET /lists/{list_id}/members`, Mailchimp's Marketing API as its official SDKs
describe it): `status` = unsubscribed | cleaned, `count` ≤ 1000 and `offset` paging, `fields` so the
answer carries only the member id, status and `last_changed` (no address, no merge fields).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator

from adapters._rest import ApiAdapter
from adapters.base import Outcome, PermanentFailure, ProviderConfig, Result, iso_date, reduced
from adapters.http import Endpoints
from adapters.recipients import Recipient, Safeguard, Transfer
from plugin.holdings import Category, Holding, Subject

MAX_CONNECTIONS = 10  # Mailchimp's documented cap per user
MAX_COUNT = 1000  # the largest `count` a Mailchimp collection accepts
# Statuses of members Mailchimp keeps after they stopped receiving mail: unsubscribed, and
# "cleaned" (the address bounced). Their `last_changed` is when that happened (or later).
SWEPT_STATUSES = ("unsubscribed", "cleaned")


class MailchimpConfig(ProviderConfig):
    api_key: SecretStr = Field(description="Marketing API key; its suffix (…-us21) names the data centre.")
    endpoints = Endpoints(production="https://{data_centre}.api.mailchimp.com/3.0")
    connections: int = Field(
        default=4,
        ge=1,
        le=MAX_CONNECTIONS,
        description="Concurrent connections to use (Mailchimp allows 10 per user, shared with your "
        "other tools).",
    )
    page_size: int = Field(
        default=MAX_COUNT,
        ge=1,
        le=MAX_COUNT,
        description="Members per page when the retention sweep lists unsubscribed and bounced members.",
    )

    @field_validator("api_key")
    @classmethod
    def _data_centre(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("base_url") is None and "-" not in value.get_secret_value():
            raise ValueError("api_key has no data-centre suffix (…-us21)")
        return value

    @property
    def data_centre(self) -> str:
        return self.api_key.get_secret_value().rsplit("-", 1)[-1]


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: md5 of the lower-cased address (an identifier, not a protection)."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


_TRANSFERS = "https://mailchimp.com/es/help/mailchimp-european-data-transfers"


class Mailchimp(ApiAdapter[MailchimpConfig]):
    name = "mailchimp"
    title = "Mailchimp"
    category = Category.NEWSLETTER
    description = (
        "Finds the member in every audience and deletes it permanently from each; the retention "
        "sweep lists unsubscribed and bounced members."
    )
    can_sweep = True
    can_reduce = True
    recipient = Recipient(
        "The Rocket Science Group LLC d/b/a Mailchimp (Intuit)",
        "US",
        (_TRANSFERS,),
        (Transfer("US", (Safeguard.DPF, Safeguard.SCC), _TRANSFERS),),
    )
    auth_settings = ("api_key",)

    def auth(self) -> httpx.Auth:
        # Any user name; the key is the password.
        return httpx.BasicAuth("gallra", self.config.api_key.get_secret_value())

    def _pool(self) -> AbstractAsyncContextManager[Any]:
        return self.ctx.http.limiter.pool(self.name, self.credential_key(), self.config.connections)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        async with self._pool():
            return await super().call(method, path, **kwargs)

    async def check_api(self) -> None:
        await self.call("GET", "/lists", params={"count": "1", "fields": "lists.id"})

    async def _members(self, subject: Subject) -> list[dict[str, Any]]:
        if not subject.email:
            return []
        body = await self.call_json("GET", "/search-members", params={"query": subject.email.strip()})
        members = ((body or {}).get("exact_matches") or {}).get("members") or []
        wanted = subscriber_hash(subject.email)
        # search-members matches loosely; keep the member whose id is this address's hash.
        return [m for m in members if m.get("id") == wanted and m.get("list_id")]

    async def find(self, subject: Subject) -> list[Holding]:
        return [self._holding(str(m["list_id"]), m) for m in await self._members(subject)]

    def _holding(self, list_id: str, member: dict[str, Any]) -> Holding:
        """One member of one audience, as a holding without personal data."""
        status = str(member.get("status") or "")
        changed = iso_date(member.get("last_changed"))
        flags = {status} if status else set()
        if status == "cleaned":
            flags.add("bounced")
        return Holding(
            system=self.name,
            category=Category.NEWSLETTER,
            ref=f"member:{list_id}:{member['id']}",
            label=f"Mailchimp member ({status or 'unknown status'}) in audience {list_id}",
            last_activity=changed,
            unsubscribed=changed if status in SWEPT_STATUSES else None,
            flags=frozenset(flags),
        )

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        list_id, deleted = await self._delete_permanent(subject, holding)
        if not deleted:
            return Result(Outcome.ALREADY_ABSENT, detail=f"not a member of audience {list_id}")
        return Result(
            Outcome.ERASED, provider_ref=list_id, detail=f"permanently deleted from audience {list_id}"
        )

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        list_id, deleted = await self._delete_permanent(subject, holding)
        if not deleted:
            return Result(Outcome.ALREADY_ABSENT, detail=f"not a member of audience {list_id}")
        detail = (
            f"permanently deleted from audience {list_id}; Mailchimp keeps the address blocked from "
            "re-import (its suppression entry)"
        )
        return reduced(fields, list_id, detail)

    async def _delete_permanent(self, subject: Subject, holding: Holding) -> tuple[str, bool]:
        """(audience, whether the member was there and is now permanently deleted)."""
        list_id, member_id = self._member_of(subject, holding)
        path = f"/lists/{list_id}/members/{member_id}/actions/delete-permanent"
        return list_id, await self.call("POST", path) is not None

    def _member_of(self, subject: Subject, holding: Holding) -> tuple[str, str]:
        """(list id, subscriber hash) of a holding: from its ref, or for an `audience:` ref from the
        subject's address."""
        kind, _, rest = holding.ref.partition(":")
        if kind == "member":
            list_id, _, member_id = rest.partition(":")
            if list_id and len(member_id) == 32:
                return list_id, member_id
        elif kind == "audience" and rest:
            if not subject.email:
                raise PermanentFailure(self.name, "the subject has no e-mail address")
            return rest, subscriber_hash(subject.email)
        raise PermanentFailure(self.name, f"not a Mailchimp member holding: {holding.ref}")

    async def sweep_holdings(self) -> AsyncIterator[Holding]:
        """Every audience's unsubscribed and cleaned members, page by page (`count`/`offset`),
        oldest change first, each answer trimmed to id, status and `last_changed`."""
        async for list_id in self._audience_ids():
            for status in SWEPT_STATUSES:
                async for member in self._paged(
                    f"/lists/{list_id}/members",
                    "members",
                    {
                        "status": status,
                        "fields": "members.id,members.status,members.last_changed,total_items",
                        # Oldest change first: a member whose status changes while we page moves to
                        # the end (seen again, never skipped).
                        "sort_field": "last_changed",
                        "sort_dir": "ASC",
                    },
                ):
                    if member.get("id"):
                        yield self._holding(list_id, member)

    async def _audience_ids(self) -> AsyncIterator[str]:
        async for audience in self._paged("/lists", "lists", {"fields": "lists.id,total_items"}):
            if audience.get("id"):
                yield str(audience["id"])

    async def _paged(self, path: str, key: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The items of one Mailchimp collection, one page in memory at a time."""
        offset = 0
        while True:
            page = {**params, "count": str(self.config.page_size), "offset": str(offset)}
            body = await self.call_json("GET", path, params=page)
            items = (body or {}).get(key) or []  # None: the audience was deleted meanwhile
            for item in items:
                yield item
            offset += len(items)
            if not items or offset >= int((body or {}).get("total_items") or 0):
                return

    async def export(self, subject: Subject) -> dict[str, Any]:
        members = []
        for member in await self._members(subject):
            full = await self.call_json("GET", f"/lists/{member['list_id']}/members/{member['id']}")
            members.append(full or member)
        return {"provider": self.title, "members": members}
