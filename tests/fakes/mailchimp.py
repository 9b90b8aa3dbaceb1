"""A stateful respx fake of the Mailchimp Marketing API (provider-apis.md §1.2): audiences with
members, search-members, list members (`status`, `count` ≤ 1000 with `offset`, default 10, `fields`
projection, `sort_field=last_changed`), archive (plain DELETE), delete-permanent, and the 404
"Resource Not Found" problem document for anything unknown.

    fake = MailchimpFake()                    # https://us21.api.mailchimp.com/3.0, key "key-us21"
    with fake.mocked():
        fake.add_member("list1", "anna@example.se")
        ...                                   # code under test
    assert fake.forgotten == {("list1", subscriber_hash("anna@example.se"))}

State: `audiences` (list id → {hash → member}), `archived` (soft-deleted, still restorable),
`forgotten` (permanently deleted: re-adding fails, as Mailchimp's does). Auth is HTTP Basic with any
user and the API key as password. Mailchimp limits connections, not rates: more than
`max_connections` (10) calls in flight get 429 and are counted in `over_limit["connections"]`.
Knobs: `latency`, `fail_next(...)` (see `ProviderFake`).
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import httpx

from adapters.mailchimp import subscriber_hash
from tests.fakes.http_provider import ProviderFake


class MailchimpFake(ProviderFake):
    max_connections = 10

    def __init__(
        self,
        base_url: str = "https://us21.api.mailchimp.com/3.0",
        *,
        api_key: str = "key-us21",
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self.api_key = api_key
        self.audiences: dict[str, dict[str, dict[str, Any]]] = {}
        self.archived: set[tuple[str, str]] = set()
        self.forgotten: set[tuple[str, str]] = set()
        self._instances = itertools.count(1)
        member = r"/lists/(?P<list_id>[^/]+)/members/(?P<member>[0-9a-f]{32})"
        self.route("GET", r"/lists/?", self._lists)
        self.route("GET", r"/lists/(?P<list_id>[^/]+)/members/?", self._list_members)
        self.route("GET", r"/search-members/?", self._search)
        self.route("GET", member + "/?", self._get_member)
        self.route("PATCH", member + "/?", self._update_member)
        self.route("DELETE", member + "/?", self._archive)
        self.route("POST", member + r"/actions/delete-permanent/?", self._delete_permanent)

    def add_member(
        self,
        list_id: str,
        email: str,
        *,
        status: str = "subscribed",
        last_changed: str = "2026-02-01T09:00:00+00:00",
    ) -> str:
        member_id = subscriber_hash(email)
        if (list_id, member_id) in self.forgotten:
            raise ValueError("Forgotten Email Not Subscribed")  # what Mailchimp answers with a 400
        self.audiences.setdefault(list_id, {})[member_id] = {
            "id": member_id,
            "email_address": email,
            "list_id": list_id,
            "status": status,
            "merge_fields": {"FNAME": "Anna"},
            "last_changed": last_changed,
        }
        return member_id

    def add_audience(self, list_id: str) -> None:
        self.audiences.setdefault(list_id, {})

    # ----- the API --------------------------------------------------------------------------------

    def authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        _user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return password == self.api_key

    def unauthorized(self) -> httpx.Response:
        return self._problem(401, "API Key Invalid", "Your API key may be invalid.")

    def _problem(self, status: int, title: str, detail: str) -> httpx.Response:
        return httpx.Response(
            status,
            headers={"Content-Type": "application/problem+json"},
            json={
                "type": "https://mailchimp.com/developer/marketing/docs/errors/",
                "title": title,
                "status": status,
                "detail": detail,
                "instance": f"00000000-0000-0000-0000-{next(self._instances):012d}",
            },
        )

    def _not_found(self) -> httpx.Response:
        return self._problem(404, "Resource Not Found", "The requested resource could not be found.")

    def _page(self, request: httpx.Request, key: str, items: list[dict[str, Any]]) -> httpx.Response:
        """One page of a collection as Mailchimp pages them: `count` (default 10, at most 1000) from
        `offset`, `total_items` for the whole, and only the `fields` asked for (dot notation)."""
        params = request.url.params
        count = int(params.get("count") or 10)
        if count > 1000:
            return self._problem(400, "Invalid Resource", "count must be at most 1000.")
        offset = int(params.get("offset") or 0)
        body: dict[str, Any] = {key: items[offset : offset + count], "total_items": len(items)}
        wanted = [f for f in (params.get("fields") or "").split(",") if f]
        if wanted:
            top = {f for f in wanted if "." not in f}
            inner = {f.split(".", 1)[1] for f in wanted if f.startswith(key + ".")}
            body = {k: v for k, v in body.items() if k in top or k == key}
            body[key] = [{k: v for k, v in item.items() if k in inner} for item in body[key]]
        return httpx.Response(200, json=body)

    def _lists(self, request: httpx.Request) -> httpx.Response:
        lists = [{"id": list_id, "name": list_id} for list_id in self.audiences]
        return self._page(request, "lists", lists)

    def _list_members(self, request: httpx.Request, list_id: str) -> httpx.Response:
        if list_id not in self.audiences:
            return self._not_found()
        status = request.url.params.get("status")
        members = [
            dict(m)
            for member_id, m in self.audiences[list_id].items()
            if (list_id, member_id) not in self.archived and (status is None or m["status"] == status)
        ]
        if request.url.params.get("sort_field") == "last_changed":
            members.sort(key=lambda m: str(m["last_changed"]))
            if request.url.params.get("sort_dir") == "DESC":
                members.reverse()
        return self._page(request, "members", members)

    def _search(self, request: httpx.Request) -> httpx.Response:
        query = (request.url.params.get("query") or "").strip().lower()
        matches = [
            dict(member)
            for members in self.audiences.values()
            for member in members.values()
            if member["email_address"].lower() == query
        ]
        return httpx.Response(
            200,
            json={
                "exact_matches": {"members": matches, "total_items": len(matches)},
                "full_search": {"members": [], "total_items": 0},
            },
        )

    def _get_member(self, request: httpx.Request, list_id: str, member: str) -> httpx.Response:
        found = self.audiences.get(list_id, {}).get(member)
        if found is None or (list_id, member) in self.archived:
            return self._not_found()
        return httpx.Response(200, json=found)

    def _update_member(self, request: httpx.Request, list_id: str, member: str) -> httpx.Response:
        found = self.audiences.get(list_id, {}).get(member)
        if found is None or (list_id, member) in self.archived:
            return self._not_found()
        status = json.loads(request.content).get("status")
        if status is not None:
            found["status"] = status
            found["last_changed"] = "2026-04-01T09:00:00+00:00"
        return httpx.Response(200, json=found)

    def _archive(self, request: httpx.Request, list_id: str, member: str) -> httpx.Response:
        if member not in self.audiences.get(list_id, {}) or (list_id, member) in self.archived:
            return self._not_found()
        self.archived.add((list_id, member))  # soft: the member and its data stay
        return httpx.Response(204)

    def _delete_permanent(self, request: httpx.Request, list_id: str, member: str) -> httpx.Response:
        if self.audiences.get(list_id, {}).pop(member, None) is None:
            return self._not_found()
        self.archived.discard((list_id, member))
        self.forgotten.add((list_id, member))
        return httpx.Response(204)
