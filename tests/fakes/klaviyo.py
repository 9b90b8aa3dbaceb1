"""A stateful respx fake of Klaviyo (provider-apis.md §1.1): profiles, suppression jobs and the
data-privacy deletion job that answers 202 with an empty body and no job id.

    fake = KlaviyoFake()                      # https://a.klaviyo.com, key "pk_test"
    with fake.mocked():
        pid = fake.add_profile("anna@example.se", phone="+46701234567")
        ...                                   # code under test
    assert fake.deleted == ["anna@example.se"] and pid not in fake.profiles

State: `profiles` (id → attributes), `suppressed` (e-mails), `suppression_jobs`, `deletion_jobs`
(the identifier dicts received), `deleted` (e-mails/phones whose profiles are gone). Knobs (see
`ProviderFake`): `latency`, `fail_next(...)`, `enforce_limits` (Klaviyo's documented windows; a call
over them gets 429 with Retry-After and is counted in `over_limit`), `delete_immediately` (False:
deletion jobs queue until `complete_deletions()`, as Klaviyo's run asynchronously). Every call must
carry `Authorization: Klaviyo-API-Key <key>` and a `revision` header, or it gets 401 / 400.

Suppressions (`suppress(pid, reason, timestamp)`) show in `attributes.subscriptions` only when
`additional-fields[profile]=subscriptions` is asked for; Get Profiles filters on
`greater-than(subscriptions.email.marketing.suppression.timestamp,…)`, honours `fields[profile]`
(sparse fieldsets, dot notation) and pages with `page[size]` (default 20, at most 100) and a
`page[cursor]` carried in `links.next`. A deletion job may name the profile by `id`.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from tests.fakes.http_provider import ProviderFake

_FILTER = re.compile(r'^equals\((email|phone_number),"(.*)"\)$')
_SUPPRESSED_AFTER = re.compile(
    r"^greater-than\(subscriptions\.email\.marketing\.suppression\.timestamp,(.+)\)$"
)


class KlaviyoFake(ProviderFake):
    limits: ClassVar[dict[str, list[tuple[int, float]]]] = {
        "profiles": [(75, 1.0), (750, 60.0)],
        "lists": [(3, 1.0), (60, 60.0)],
        "suppression": [(3, 1.0), (60, 60.0)],
        "deletion": [(3, 1.0), (60, 60.0)],
    }

    def __init__(
        self, base_url: str = "https://a.klaviyo.com", *, api_key: str = "pk_test", **kwargs: Any
    ) -> None:
        super().__init__(base_url, **kwargs)
        self.api_key = api_key
        self.profiles: dict[str, dict[str, Any]] = {}
        self.profile_lists: dict[str, list[str]] = {}
        self.suppressions: dict[str, list[dict[str, str]]] = {}  # profile id → [{reason, timestamp}]
        self.suppressed: set[str] = set()
        self.suppression_jobs: list[str] = []
        self.deletion_jobs: list[dict[str, str]] = []
        self.deleted: list[str] = []
        self.delete_immediately = True
        self._pending: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self.route("GET", r"/api/profiles/?", self._list_profiles, scope="profiles")
        self.route("GET", r"/api/profiles/(?P<pid>[^/?]+)/?", self._get_profile, scope="profiles")
        self.route("GET", r"/api/profiles/(?P<pid>[^/?]+)/lists/?", self._lists, scope="lists")
        self.route("GET", r"/api/profiles/(?P<pid>[^/?]+)/segments/?", self._segments, scope="lists")
        self.route(
            "POST", r"/api/profile-suppression-bulk-create-jobs/?", self._suppress, scope="suppression"
        )
        self.route("POST", r"/api/data-privacy-deletion-jobs/?", self._delete, scope="deletion")

    # ----- state ----------------------------------------------------------------------------------

    def add_profile(
        self, email: str | None = None, *, phone: str | None = None, lists: tuple[str, ...] = ()
    ) -> str:
        pid = f"01KLAVIYO{next(self._ids):06d}"
        self.profiles[pid] = {
            "email": email,
            "phone_number": phone,
            "first_name": "Anna",
            "updated": "2026-03-01T10:00:00+00:00",
        }
        self.profile_lists[pid] = list(lists)
        return pid

    def suppress(
        self, pid: str, reason: str = "UNSUBSCRIBE", timestamp: str = "2026-03-01T10:00:00+00:00"
    ) -> None:
        self.suppressions.setdefault(pid, []).append({"reason": reason, "timestamp": timestamp})

    def complete_deletions(self) -> None:
        for identifier in self._pending:
            self._remove(identifier)
        self._pending.clear()

    def _matching(self, key: str, value: str) -> list[str]:
        if key == "id":
            return [value] if value in self.profiles else []
        return [pid for pid, attrs in self.profiles.items() if attrs.get(key) == value]

    def _remove(self, identifier: dict[str, str]) -> None:
        ((key, value),) = identifier.items()
        for pid in self._matching(key, value):
            del self.profiles[pid]
            self.profile_lists.pop(pid, None)
            self.suppressions.pop(pid, None)
        self.deleted.append(value)

    # ----- the API --------------------------------------------------------------------------------

    def authorized(self, request: httpx.Request) -> bool:
        return bool(request.headers.get("Authorization") == f"Klaviyo-API-Key {self.api_key}")

    def unauthorized(self) -> httpx.Response:
        return _error(401, "not_authenticated", "Authentication credentials were not provided.")

    def _check_revision(self, request: httpx.Request) -> httpx.Response | None:
        if not request.headers.get("revision"):
            return _error(400, "invalid", "The revision header is required.")
        return None

    def _list_profiles(self, request: httpx.Request) -> httpx.Response:
        if (bad := self._check_revision(request)) is not None:
            return bad
        params = request.url.params
        query = params.get("filter")
        if query is None:
            found = list(self.profiles)
        elif after := _SUPPRESSED_AFTER.match(query):
            since = _moment(after[1])
            found = [
                pid
                for pid in self.profiles
                if any(_moment(s["timestamp"]) > since for s in self.suppressions.get(pid, []))
            ]
        else:
            match = _FILTER.match(query)
            if not match:
                return _error(400, "invalid", "Invalid filter.")
            found = self._matching(match[1], match[2])
        size = int(params.get("page[size]") or 20)
        if not 1 <= size <= 100:
            return _error(400, "invalid", "page[size] must be between 1 and 100.")
        start = int(params.get("page[cursor]") or 0)
        page = found[start : start + size]
        links: dict[str, str] = {"self": str(request.url)}
        if start + size < len(found):
            following = {k: v for k, v in params.items() if k != "page[cursor]"}
            following["page[cursor]"] = str(start + size)
            links["next"] = f"{self.base_url}/api/profiles/?{urlencode(following)}"
        return httpx.Response(
            200, json={"data": [self._profile(pid, request) for pid in page], "links": links}
        )

    def _get_profile(self, request: httpx.Request, pid: str) -> httpx.Response:
        if pid not in self.profiles:
            return _error(404, "not_found", "A profile with id was not found.")
        return httpx.Response(200, json={"data": self._profile(pid, request)})

    def _profile(self, pid: str, request: httpx.Request | None = None) -> dict[str, Any]:
        attributes: dict[str, Any] = dict(self.profiles[pid])
        params = request.url.params if request is not None else None
        if params is not None and "subscriptions" in (params.get("additional-fields[profile]") or ""):
            marketing = {
                "can_receive_email_marketing": not self.suppressions.get(pid),
                "consent": "UNSUBSCRIBED" if self.suppressions.get(pid) else "SUBSCRIBED",
                "suppression": list(self.suppressions.get(pid, [])),
                "list_suppressions": [],
            }
            attributes["subscriptions"] = {"email": {"marketing": marketing}}
        wanted = [f for f in ((params.get("fields[profile]") if params else None) or "").split(",") if f]
        if wanted:
            attributes = _sparse(attributes, wanted)
        return {"type": "profile", "id": pid, "attributes": attributes}

    def _lists(self, request: httpx.Request, pid: str) -> httpx.Response:
        if pid not in self.profiles:
            return _error(404, "not_found", "Not found.")
        lists = self.profile_lists.get(pid, [])
        return httpx.Response(
            200, json={"data": [{"type": "list", "id": n, "attributes": {"name": n}} for n in lists]}
        )

    def _segments(self, request: httpx.Request, pid: str) -> httpx.Response:
        if pid not in self.profiles:
            return _error(404, "not_found", "Not found.")
        return httpx.Response(200, json={"data": []})

    def _suppress(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        data = body["data"]
        if data.get("type") != "profile-suppression-bulk-create-job":
            return _error(400, "invalid", "Wrong type.")
        profiles = data["attributes"]["profiles"]["data"]
        if len(profiles) > 100:
            return _error(400, "invalid", "At most 100 profiles.")
        for profile in profiles:
            email = profile["attributes"]["email"]
            self.suppressed.add(email)
            for pid in self._matching("email", email):  # Klaviyo suppresses every profile with it
                self.suppress(pid, "USER_SUPPRESSED")
        job_id = f"01SUPPRESS{len(self.suppression_jobs) + 1:06d}"
        self.suppression_jobs.append(job_id)
        attributes = {"status": "queued", "total_count": len(profiles), "completed_count": 0}
        return httpx.Response(
            202,
            json={
                "data": {
                    "type": "profile-suppression-bulk-create-job",
                    "id": job_id,
                    "attributes": attributes,
                }
            },
        )

    def _delete(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        data = body["data"]
        if data.get("type") != "data-privacy-deletion-job":
            return _error(400, "invalid", "Wrong type.")
        profile = data["attributes"]["profile"]["data"]
        identifier = {k: v for k, v in (profile.get("attributes") or {}).items() if v}
        if profile.get("id"):
            identifier["id"] = profile["id"]
        if len(identifier) != 1:
            return _error(400, "invalid", "Exactly one identifier must be given.")
        self.deletion_jobs.append(identifier)
        if self.delete_immediately:
            self._remove(identifier)
        else:
            self._pending.append(identifier)
        return httpx.Response(202)  # no body, no job id: Klaviyo's documented answer


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _sparse(attributes: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    """Only the fields asked for, dot notation reaching into nested objects."""
    kept: dict[str, Any] = {}
    for path in wanted:
        source: Any = attributes
        target = kept
        keys = path.split(".")
        for depth, key in enumerate(keys):
            if not isinstance(source, dict) or key not in source:
                break
            if depth == len(keys) - 1:
                target[key] = source[key]
            else:
                source = source[key]
                target = target.setdefault(key, {})
    return kept


def _error(status: int, code: str, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"errors": [{"id": "e1", "status": status, "code": code, "title": code, "detail": detail}]},
    )
