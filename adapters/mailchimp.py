"""Mailchimp Marketing (provider-apis.md §1.2): find the member across audiences, then
delete-permanent per audience.

Quirks: a plain `DELETE …/members/{hash}` only archives (reversible), so erasure is
`POST …/actions/delete-permanent`, once per audience. A second call, or an unknown member, answers
404 "Resource Not Found": already absent. Mailchimp limits concurrent connections (at most 10 per
user) rather than a rate, and sends no rate-limit headers, so calls share a small per-key pool.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, model_validator

from adapters._rest import ApiAdapter
from adapters.base import AdapterConfig, Outcome, PermanentFailure, Result, iso_date
from plugin.holdings import Category, Holding, Subject

MAX_CONNECTIONS = 10  # Mailchimp's documented cap per user


class MailchimpConfig(AdapterConfig):
    api_key: SecretStr = Field(description="Marketing API key; its suffix (…-us21) names the data centre.")
    base_url: str | None = Field(
        default=None,
        description="Mailchimp API address; leave empty to derive https://<dc>.api.mailchimp.com/3.0 "
        "from the key.",
    )
    connections: int = Field(
        default=4,
        ge=1,
        le=MAX_CONNECTIONS,
        description="Concurrent connections to use (Mailchimp allows 10 per user, shared with your "
        "other tools).",
    )

    @model_validator(mode="after")
    def _data_centre(self) -> MailchimpConfig:
        if self.base_url is None and "-" not in self.api_key.get_secret_value():
            raise ValueError("api_key has no data-centre suffix (…-us21); set base_url instead")
        return self


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: md5 of the lower-cased address (an identifier, not a protection)."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


class Mailchimp(ApiAdapter):
    name = "mailchimp"
    title = "Mailchimp"
    category = Category.NEWSLETTER
    description = "Finds the member in every audience and deletes it permanently from each."
    Config: ClassVar[type[AdapterConfig]] = MailchimpConfig
    auth_settings = ("api_key",)

    @property
    def settings(self) -> MailchimpConfig:
        assert isinstance(self.config, MailchimpConfig)
        return self.config

    def auth(self) -> httpx.Auth:
        # Any user name; the key is the password.
        return httpx.BasicAuth("gallra", self.settings.api_key.get_secret_value())

    def url(self, path: str) -> str:
        base = self.settings.base_url
        if base is None:
            data_centre = self.settings.api_key.get_secret_value().rsplit("-", 1)[1]
            base = f"https://{data_centre}.api.mailchimp.com/3.0"
        return base.rstrip("/") + path

    def _pool(self) -> asyncio.Semaphore:
        return self.ctx.http.limiter.pool(self.name, self.credential_key(), self.settings.connections)

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        async with self._pool():
            return await super().call(method, path, **kwargs)

    async def check(self) -> None:
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
        held = []
        for member in await self._members(subject):
            status = str(member.get("status") or "")
            gone = status in {"unsubscribed", "cleaned"}
            held.append(
                Holding(
                    system=self.name,
                    category=Category.NEWSLETTER,
                    ref=f"audience:{member['list_id']}",
                    label=f"Mailchimp audience {member['list_id']}",
                    last_activity=iso_date(member.get("last_changed")),
                    unsubscribed=iso_date(member.get("last_changed")) if gone else None,
                    flags=frozenset({status}) if status else frozenset(),
                )
            )
        return held

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        if not subject.email:
            raise PermanentFailure(self.name, "the subject has no e-mail address")
        kind, _, list_id = holding.ref.partition(":")
        if kind != "audience" or not list_id:
            raise PermanentFailure(self.name, f"not a Mailchimp audience holding: {holding.ref}")
        path = f"/lists/{list_id}/members/{subscriber_hash(subject.email)}/actions/delete-permanent"
        if await self.call("POST", path) is None:
            return Result(Outcome.ALREADY_ABSENT, detail=f"not a member of audience {list_id}")
        return Result(
            Outcome.ERASED, provider_ref=list_id, detail=f"permanently deleted from audience {list_id}"
        )

    async def export(self, subject: Subject) -> dict[str, Any]:
        members = []
        for member in await self._members(subject):
            full = await self.call_json("GET", f"/lists/{member['list_id']}/members/{member['id']}")
            members.append(full or member)
        return {"provider": self.title, "members": members}
