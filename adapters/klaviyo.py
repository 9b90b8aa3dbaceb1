"""Klaviyo (provider-apis.md §1.1): find the profile, suppress the address, then a data-privacy
deletion job.

Quirk: the deletion job answers 202 with an empty body (no job id, no status endpoint; completion
shows only on Klaviyo's "Deleted Profiles" page), and what it does for an address without a profile
is undocumented. So erase looks the profile up first: no profile is `already_absent`, a profile gets
the job and the result `erase_requested` with no provider reference. A repeated erase after Klaviyo
finished finds no profile; one before re-submits the job, which deletes nothing twice.

For the retention sweep, `sweep_holdings` lists the suppressed profiles (unsubscribed, bounced,
marked as spam, invalid, suppressed by hand) with the date of their suppression: Get Profiles with
a filter on `subscriptions.email.marketing.suppression.timestamp`, the `subscriptions` additional
field, a sparse fieldset without any address, and cursor paging (klaviyo/openapi stable.json,
revision 2026-07-15; Klaviyo's Profiles API overview, "Fetching suppressed profiles"). Such a
holding's ref is `profile:<id>`, and a subject without an address is erased by a deletion job
naming the profile id (one identifier: `email`, `phone_number` or `id`).

Reduce (the retention rule keeps only a suppression entry) reads the profile by the id in its ref,
address and suppressions only, suppresses its address globally unless it is suppressed already (the
suppression job takes addresses, hence the look-up; always, whatever `suppress` says, since the
suppression is what the rule keeps), then submits the deletion job naming the profile id. Klaviyo
documents that it keeps the contact information of deleted profiles as a record, as GDPR requires
(data_privacy_api_overview): that record is the suppression entry, and the job is the only way to
remove a profile's properties and activity. With `delete` off it suppresses only and says which
fields stay at Klaviyo.

Verification (`verification`, `gone`): the deletion job has no status to ask, so the executor looks
the profile up again by the original address (or phone) an hour after the job, then every six
hours for a week; Klaviyo documents no completion time. Gone means no profile with the erased id
is found, or only one whose address Klaviyo replaced by `redacted.<id>@…` (what it keeps of a
deleted profile is that redacted shell and its record of the contact information, which the
`find` by the original address no longer matches). A profile erased by id only (the retention
sweep) cannot be looked up again: Gallra holds no address for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter, safe_reason
from adapters.base import (
    Outcome,
    PermanentFailure,
    ProviderConfig,
    Result,
    Verification,
    iso_date,
    reduced,
    suppressed_only,
)
from adapters.http import Endpoints, RateLimit
from adapters.recipients import Recipient, Safeguard, Transfer
from plugin.holdings import Category, Holding, Subject

REVISION = "2026-07-15"  # pinned per adapter release; Klaviyo requires it on every call
JSONAPI = "application/vnd.api+json"
PAGE_SIZE = 100  # Get Profiles' maximum page[size]
# Every suppressed profile has a suppression timestamp, so "after the epoch" selects exactly them.
SUPPRESSED = "greater-than(subscriptions.email.marketing.suppression.timestamp,1970-01-01T00:00:00Z)"
SUPPRESSION_FIELDS = "updated,subscriptions.email.marketing.suppression"
REDUCE_FIELDS = "email,subscriptions.email.marketing.suppression"
BOUNCES = frozenset({"HARD_BOUNCE", "INVALID_EMAIL"})
REDACTED = "redacted."  # the address Klaviyo gives the shell of a deleted profile begins so


class KlaviyoConfig(ProviderConfig):
    api_key: SecretStr = Field(
        description="Private API key (pk_…) with the scopes profiles:read, profiles:write, "
        "lists:read, segments:read, subscriptions:write and data-privacy:write."
    )
    endpoints = Endpoints(production="https://a.klaviyo.com")
    suppress: bool = Field(
        default=True,
        description="Suppress the e-mail address first, so no campaign reaches it while the "
        "asynchronous deletion runs.",
    )
    delete: bool = Field(
        default=True,
        description="Delete the profile with a data-privacy deletion job. Off: suppress only.",
    )


class Klaviyo(ApiAdapter[KlaviyoConfig]):
    name = "klaviyo"
    title = "Klaviyo"
    category = Category.NEWSLETTER
    description = (
        "Finds the profile, suppresses the address and requests GDPR deletion; the retention sweep "
        "lists suppressed (unsubscribed or bounced) profiles."
    )
    can_sweep = True
    can_reduce = True
    recipient = Recipient(
        "Klaviyo, Inc.",
        "US",
        (
            "https://www.klaviyo.com/legal/privacy-faqs",
            "https://www.klaviyo.com/uk/gdpr",
            "not confirmed: standard contractual clauses in Klaviyo's data processing agreement",
        ),
        (Transfer("US", (Safeguard.DPF,), "https://www.klaviyo.com/uk/gdpr"),),
    )
    auth_settings = ("api_key",)
    # Per account, burst and steady windows (§1.1). Suppression jobs have no documented tier in the
    # reference, so they get Klaviyo's smallest standard tier (S).
    rate_limits = (
        RateLimit(75, 1.0, "profiles"),
        RateLimit(750, 60.0, "profiles"),
        RateLimit(3, 1.0, "lists"),
        RateLimit(60, 60.0, "lists"),
        RateLimit(3, 1.0, "suppression"),
        RateLimit(60, 60.0, "suppression"),
        RateLimit(3, 1.0, "deletion"),
        RateLimit(60, 60.0, "deletion"),
    )

    verification = Verification(
        after=timedelta(hours=1),
        every=timedelta(hours=6),
        within=timedelta(days=7),
        how="Klaviyo's profile search by the erased address (or phone) found no profile left",
    )

    def gone(self, holding: Holding, found: Sequence[Holding]) -> bool:
        return all(h.ref != holding.ref or "redacted" in h.flags for h in found)

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Klaviyo-API-Key {self.config.api_key.get_secret_value()}",
            "revision": REVISION,
            "Accept": JSONAPI,
            "Content-Type": JSONAPI,
        }

    async def check_api(self) -> None:
        await self.call("GET", "/api/profiles", params={"page[size]": "1"}, scope="profiles")

    async def _profiles(self, subject: Subject) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
        """Profile id → (profile, the one identifier that found it), by e-mail and by phone."""
        found: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        for key, value in _identifiers(subject):
            query = f'equals({key},"{value}")'
            body = await self.call_json("GET", "/api/profiles", params={"filter": query}, scope="profiles")
            for profile in (body or {}).get("data") or []:
                found.setdefault(str(profile["id"]), (profile, {key: value}))
        return found

    async def find(self, subject: Subject) -> list[Holding]:
        return [
            Holding(
                system=self.name,
                category=Category.NEWSLETTER,
                ref=f"profile:{pid}",
                label=f"Klaviyo profile {pid}",
                last_activity=iso_date(profile.get("attributes", {}).get("updated")),
                flags=_redacted(profile),
            )
            for pid, (profile, _) in (await self._profiles(subject)).items()
        ]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        if not _identifiers(subject):
            return await self._erase_by_id(holding)
        found = (await self._profiles(subject)).get(holding.ref.removeprefix("profile:"))
        if found is None:
            return Result(Outcome.ALREADY_ABSENT, detail="no such Klaviyo profile")
        _, identifier = found
        job_id = None
        if self.config.suppress and subject.email:
            job_id = await self._suppress(subject.email.strip())
        if not self.config.delete:
            return Result(Outcome.SUPPRESSED, provider_ref=job_id, detail="address suppressed in Klaviyo")
        # Exactly one identifier: Klaviyo rejects a job naming more than one, and deletes every
        # profile matching it.
        return await self._deletion_job(job_id, {"type": "profile", "attributes": identifier})

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        body = await self._profile_by_id(holding, REDUCE_FIELDS)
        if not body:
            return Result(Outcome.ALREADY_ABSENT, detail="no such Klaviyo profile")
        profile = body.get("data") or {}
        job_id = None
        if not _suppressions(profile):
            email = str((profile.get("attributes") or {}).get("email") or "").strip()
            if email:
                job_id = await self._suppress(email)
            elif not self.config.delete:
                raise PermanentFailure(self.name, "the profile has no e-mail address to suppress; it is kept")
        if not self.config.delete:
            why = "deletion is off in the Klaviyo connection, and only a deletion job removes them"
            return suppressed_only(fields, job_id, "address suppressed in Klaviyo", why)
        pid = holding.ref.partition(":")[2]
        deleted = await self._deletion_job(job_id, {"type": "profile", "id": pid, "attributes": {}})
        if deleted.outcome is not Outcome.ERASE_REQUESTED:
            return deleted
        return reduced(
            fields,
            job_id,
            "address suppressed, then Klaviyo accepted the deletion job for the profile (asynchronous, "
            "no job id); Klaviyo keeps the deleted profile's contact information as its record",
        )

    async def _profile_by_id(self, holding: Holding, fields: str) -> Any:
        """The profile a `profile:<id>` holding names, with its suppressions; None when gone."""
        kind, _, pid = holding.ref.partition(":")
        if kind != "profile" or not pid:
            raise PermanentFailure(self.name, f"not a Klaviyo profile holding: {holding.ref}")
        return await self.call_json(
            "GET",
            f"/api/profiles/{pid}",
            params={"additional-fields[profile]": "subscriptions", "fields[profile]": fields},
            scope="profiles",
        )

    async def _erase_by_id(self, holding: Holding) -> Result:
        """A holding from the sweep: no address, only the profile id in its ref."""
        profile = await self._profile_by_id(holding, SUPPRESSION_FIELDS)
        if not profile:
            return Result(Outcome.ALREADY_ABSENT, detail="no such Klaviyo profile")
        if not self.config.delete:
            # Without an address Gallra cannot suppress; a swept profile is suppressed already.
            if _suppressions(profile.get("data") or {}):
                return Result(Outcome.SUPPRESSED, detail="already suppressed in Klaviyo; deletion is off")
            raise PermanentFailure(self.name, "deletion is off and the profile is not suppressed")
        pid = holding.ref.partition(":")[2]
        return await self._deletion_job(None, {"type": "profile", "id": pid, "attributes": {}})

    async def _deletion_job(self, job_id: str | None, profile: dict[str, Any]) -> Result:
        deleted = await self.call(
            "POST",
            "/api/data-privacy-deletion-jobs",
            scope="deletion",
            accept=(400,),
            json={
                "data": {
                    "type": "data-privacy-deletion-job",
                    "attributes": {"profile": {"data": profile}},
                }
            },
        )
        if deleted is None or _not_found(deleted):  # deleted between our look-up and the job
            return Result(Outcome.ALREADY_ABSENT, detail="Klaviyo reports no such profile")
        if not deleted.is_success:
            raise PermanentFailure(self.name, "deletion job refused", remote=safe_reason(deleted))
        return Result(
            Outcome.ERASE_REQUESTED,
            provider_ref=job_id,
            detail="Klaviyo accepted the deletion job (it returns no job id; completion shows on "
            "its Deleted Profiles page)",
        )

    async def _suppress(self, email: str) -> str | None:
        body = await self.call_json(
            "POST",
            "/api/profile-suppression-bulk-create-jobs",
            scope="suppression",
            json={
                "data": {
                    "type": "profile-suppression-bulk-create-job",
                    "attributes": {
                        "profiles": {"data": [{"type": "profile", "attributes": {"email": email}}]}
                    },
                }
            },
        )
        job = (body or {}).get("data") or {}
        return str(job["id"]) if job.get("id") else None

    async def sweep_holdings(self) -> AsyncIterator[Holding]:
        """Every suppressed profile, 100 a page, following Klaviyo's cursor."""
        cursor: str | None = None
        while True:
            params = {
                "filter": SUPPRESSED,
                "additional-fields[profile]": "subscriptions",
                "fields[profile]": SUPPRESSION_FIELDS,
                "page[size]": str(PAGE_SIZE),
            }
            if cursor:
                params["page[cursor]"] = cursor
            body = await self.call_json("GET", "/api/profiles", params=params, scope="profiles") or {}
            for profile in body.get("data") or []:
                holding = self._swept(profile)
                if holding is not None:
                    yield holding
            cursor = _next_cursor(body)
            if cursor is None:
                return

    def _swept(self, profile: dict[str, Any]) -> Holding | None:
        suppressions = _suppressions(profile)
        if not profile.get("id") or not suppressions:
            return None
        # The newest suppression: a date never earlier than the one the person stopped receiving
        # mail, so the period is never counted from too early.
        reason, since = max(suppressions, key=lambda s: s[1])
        flags = {reason.lower()} | ({"bounced"} if reason in BOUNCES else set())
        return Holding(
            system=self.name,
            category=Category.NEWSLETTER,
            ref=f"profile:{profile['id']}",
            label=f"Klaviyo profile (suppressed: {reason.lower().replace('_', ' ')})",
            last_activity=iso_date((profile.get("attributes") or {}).get("updated")),
            unsubscribed=since,
            flags=frozenset(flags),
        )

    async def export(self, subject: Subject) -> dict[str, Any]:
        profiles = []
        for profile, _ in (await self._profiles(subject)).values():
            lists = await self.call_json("GET", f"/api/profiles/{profile['id']}/lists", scope="lists")
            segments = await self.call_json("GET", f"/api/profiles/{profile['id']}/segments", scope="lists")
            profiles.append(
                {
                    "id": profile["id"],
                    "attributes": profile.get("attributes", {}),
                    "lists": [_name(item) for item in (lists or {}).get("data", [])],
                    "segments": [_name(item) for item in (segments or {}).get("data", [])],
                }
            )
        return {"provider": self.title, "profiles": profiles}


def _identifiers(subject: Subject) -> list[tuple[str, str]]:
    found = []
    if subject.email and subject.email.strip():
        found.append(("email", subject.email.strip()))
    if subject.phone and subject.phone.strip():
        found.append(("phone_number", subject.phone.strip()))
    return found


def _redacted(profile: dict[str, Any]) -> frozenset[str]:
    email = str((profile.get("attributes") or {}).get("email") or "")
    return frozenset({"redacted"}) if email.startswith(REDACTED) else frozenset()


def _suppressions(profile: dict[str, Any]) -> list[tuple[str, date]]:
    """(reason, date) of a profile's global e-mail marketing suppressions."""
    subscriptions = (profile.get("attributes") or {}).get("subscriptions") or {}
    marketing = ((subscriptions.get("email") or {}).get("marketing")) or {}
    found = []
    for entry in marketing.get("suppression") or []:
        when = iso_date(entry.get("timestamp")) if isinstance(entry, dict) else None
        if when is not None:
            found.append((str(entry.get("reason") or "SUPPRESSED"), when))
    return found


def _next_cursor(body: dict[str, Any]) -> str | None:
    """The `page[cursor]` of the next page's link; only the cursor is taken, so calls always go to
    the configured base URL."""
    link = (body.get("links") or {}).get("next")
    if not link:
        return None
    values = parse_qs(urlsplit(str(link)).query).get("page[cursor]")
    return values[0] if values else None


def _not_found(response: httpx.Response) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(e, dict) and e.get("code") == "not_found" for e in errors)


def _name(item: dict[str, Any]) -> str:
    return str(item.get("attributes", {}).get("name") or item.get("id"))
