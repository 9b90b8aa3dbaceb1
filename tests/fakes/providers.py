"""Local fake providers over real HTTP, for the crash and storm tests and the executor benchmark.

A small Starlette app served by uvicorn in a background thread: Klaviyo (profile look-up by address
and by id, suppression jobs, data-privacy deletion jobs naming an address or a profile id) and
Mailchimp (search-members, delete-permanent), each answering after a fixed latency and enforcing its
documented limits the way the reference describes them (shared/reference/provider-apis.md): Klaviyo
per-scope burst and steady windows (answered with 429 + Retry-After, counted as `over_limit`),
Mailchimp at most 10 concurrent connections. Limits can be scaled up so a benchmark finishes in
minutes. Erasures are counted per subject *when answered*, so a call whose client died mid-way is
not an erasure.

`block_first_deletion(email)` makes the first Klaviyo deletion job for that address hang until the
client goes away (the crash test kills the worker while it waits).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import socket
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# Documented limits: Klaviyo per scope (burst per second, steady per minute); Mailchimp concurrency.
KLAVIYO_LIMITS = {
    "profiles": ((75, 1.0), (750, 60.0)),
    "suppression": ((3, 1.0), (60, 60.0)),
    "deletion": ((3, 1.0), (60, 60.0)),
}
MAILCHIMP_CONNECTIONS = 10


def md5(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def profile_id(email: str) -> str:
    return "P" + md5(email)[:12]


@dataclass
class ScopeStats:
    calls: int = 0
    over_limit: int = 0
    first: float | None = None
    last: float | None = None
    log: deque[float] = field(default_factory=deque)
    over_windows: Counter[str] = field(default_factory=Counter)  # which window each refusal broke


@dataclass
class FakeProviders:
    latency: float = 0.05
    scale: float = 1.0  # multiplies every documented limit (the adapters must be scaled alike)
    profiles: set[str] = field(default_factory=set)  # Klaviyo profiles by e-mail
    suppressed: set[str] = field(default_factory=set)  # Klaviyo addresses suppressed
    members: dict[str, set[str]] = field(default_factory=dict)  # Mailchimp list id -> e-mails
    deletions: Counter[str] = field(default_factory=Counter)  # Klaviyo deletion jobs answered
    purges: Counter[tuple[str, str]] = field(default_factory=Counter)  # Mailchimp (list, e-mail)
    stats: dict[str, ScopeStats] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)  # e-mails whose deletion call is hanging now
    in_flight: int = 0
    max_in_flight: int = 0
    storm: deque[int] = field(default_factory=deque)  # statuses (429/5xx) for the next Klaviyo calls
    storm_answered: int = 0

    def _storm(self) -> Response | None:
        if not self.storm:
            return None
        status = self.storm.popleft()
        self.storm_answered += 1
        if status == 429:
            return _too_many(1.0)
        return JSONResponse({"errors": [{"status": status, "code": "error"}]}, status_code=status)

    def block_first_deletion(self, email: str) -> None:
        self.blocked.add(email)

    # ---- limits ------------------------------------------------------------------------------

    def _limited(self, key: str, limits: tuple[tuple[int, float], ...]) -> float | None:
        """Record a call; the Retry-After (s) if it breaks a window, else None."""
        now = time.monotonic()
        stats = self.stats.setdefault(key, ScopeStats())
        stats.calls += 1
        stats.first = stats.first if stats.first is not None else now
        stats.last = now
        longest = max(per for _, per in limits)
        while stats.log and stats.log[0] <= now - longest:
            stats.log.popleft()
        for requests, per in limits:
            allowed = int(requests * self.scale)
            recent = [t for t in stats.log if t > now - per]
            if len(recent) >= allowed:
                stats.over_limit += 1
                stats.over_windows[f"{allowed}/{per:g}s"] += 1
                # Retry-After: until the oldest call in the window leaves it.
                return recent[-allowed] + per - now
        stats.log.append(now)
        return None

    def achieved(self, key: str, per: float) -> float:
        """Calls per `per` seconds over the scope's active period."""
        stats = self.stats.get(key)
        if not stats or stats.calls < 2 or stats.first is None or stats.last is None:
            return 0.0
        return (stats.calls - stats.over_limit - 1) / max(stats.last - stats.first, 1e-9) * per

    # ---- Klaviyo -----------------------------------------------------------------------------

    async def _klaviyo_gate(self, scope: str) -> Response | None:
        """Count a call against the scope's windows on arrival and answer after the latency: a
        storm's status, 429 when a window is full, or None to go on."""
        wait = self._limited(f"klaviyo:{scope}", KLAVIYO_LIMITS[scope])
        await asyncio.sleep(self.latency)
        if (stormy := self._storm()) is not None:
            return stormy
        return _too_many(wait) if wait is not None else None

    async def klaviyo_profiles(self, request: Request) -> Response:
        if (refused := await self._klaviyo_gate("profiles")) is not None:
            return refused
        query = request.query_params.get("filter", "")
        email = query.partition('"')[2].rpartition('"')[0]
        data = [self._profile(email)] if email in self.profiles else []
        return JSONResponse({"data": data})

    async def klaviyo_profile(self, request: Request) -> Response:
        """Get Profile by id: its address and (asked for as an additional field) suppressions."""
        if (refused := await self._klaviyo_gate("profiles")) is not None:
            return refused
        email = self._email_of(request.path_params["pid"])
        if email is None:
            return JSONResponse({"errors": [{"status": 404, "code": "not_found"}]}, status_code=404)
        return JSONResponse({"data": self._profile(email)})

    def _profile(self, email: str) -> dict[str, Any]:
        suppression = [{"reason": "USER_SUPPRESSED", "timestamp": "2026-01-01T00:00:00Z"}]
        marketing = {"suppression": suppression if email in self.suppressed else []}
        attributes = {"email": email, "subscriptions": {"email": {"marketing": marketing}}}
        return {"type": "profile", "id": profile_id(email), "attributes": attributes}

    def _email_of(self, pid: str, *, deleted: bool = False) -> str | None:
        """The address of a profile id; with `deleted`, also of profiles deleted already (so a
        repeated deletion by id counts against its address, as a duplicate)."""
        known = self.profiles | set(self.deletions) if deleted else self.profiles
        return next((e for e in known if profile_id(e) == pid), None)

    async def klaviyo_suppress(self, request: Request) -> Response:
        if (refused := await self._klaviyo_gate("suppression")) is not None:
            return refused
        body = await request.json()
        for profile in body["data"]["attributes"]["profiles"]["data"]:
            self.suppressed.add(profile["attributes"]["email"])
        return JSONResponse(
            {"data": {"type": "profile-suppression-bulk-create-job", "id": "S1"}}, status_code=202
        )

    async def klaviyo_delete(self, request: Request) -> Response:
        body = await request.json()
        profile = body["data"]["attributes"]["profile"]["data"]
        # One identifier: the address (erase) or the profile id (reduce, and subjects without one).
        pid = profile.get("id", "")
        email = profile["attributes"].get("email") or self._email_of(pid, deleted=True) or ""
        if email in self.blocked:
            self.blocked.discard(email)
            self.waiting.add(email)
            try:
                while True:  # hang until the client goes away
                    if await request.is_disconnected():
                        return Response(status_code=499)
                    await asyncio.sleep(0.05)
            finally:
                self.waiting.discard(email)
        if (refused := await self._klaviyo_gate("deletion")) is not None:
            return refused
        self.profiles.discard(email)
        self.deletions[email] += 1
        return Response(status_code=202)

    # ---- Mailchimp ---------------------------------------------------------------------------

    async def _mailchimp(self, handler: Any) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        stats = self.stats.setdefault("mailchimp", ScopeStats())
        now = time.monotonic()
        stats.calls += 1
        stats.first = stats.first if stats.first is not None else now
        try:
            if self.in_flight > MAILCHIMP_CONNECTIONS:  # a concurrency cap: not scaled
                stats.over_limit += 1
                return JSONResponse({"title": "Too Many Requests", "status": 429}, status_code=429)
            await asyncio.sleep(self.latency)
            response: Response = handler()
            return response
        finally:
            self.in_flight -= 1
            stats.last = time.monotonic()

    async def mailchimp_search(self, request: Request) -> Response:
        email = request.query_params.get("query", "")

        def answer() -> Response:
            found = [
                {"id": md5(email), "list_id": list_id, "status": "subscribed", "email_address": email}
                for list_id, emails in sorted(self.members.items())
                if email in emails
            ]
            return JSONResponse({"exact_matches": {"members": found, "total_items": len(found)}})

        return await self._mailchimp(answer)

    async def mailchimp_purge(self, request: Request) -> Response:
        list_id, member = request.path_params["list_id"], request.path_params["member"]

        def answer() -> Response:
            emails = self.members.get(list_id, set())
            match = next((e for e in emails if md5(e) == member), None)
            if match is None:
                return JSONResponse({"title": "Resource Not Found", "status": 404}, status_code=404)
            emails.discard(match)
            self.purges[(list_id, match)] += 1
            return Response(status_code=204)

        return await self._mailchimp(answer)

    async def setup(self, request: Request) -> Response:
        body = await request.json()
        self.profiles.update(body.get("profiles", []))
        for list_id, emails in body.get("members", {}).items():
            self.members.setdefault(list_id, set()).update(emails)
        return JSONResponse({"ok": True})

    async def report(self, request: Request) -> Response:
        return JSONResponse(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        return {
            "deletions": dict(self.deletions),
            "purges": [[list_id, email, n] for (list_id, email), n in self.purges.items()],
            "max_in_flight": self.max_in_flight,
            "stats": {
                key: {
                    "calls": st.calls,
                    "over_limit": st.over_limit,
                    "over_windows": dict(st.over_windows),
                    "first": st.first,
                    "last": st.last,
                }
                for key, st in self.stats.items()
            },
        }

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/_setup", self.setup, methods=["POST"]),
                Route("/_report", self.report),
                Route("/klaviyo/api/profiles", self.klaviyo_profiles),
                Route("/klaviyo/api/profiles/{pid}", self.klaviyo_profile),
                Route(
                    "/klaviyo/api/profile-suppression-bulk-create-jobs",
                    self.klaviyo_suppress,
                    methods=["POST"],
                ),
                Route("/klaviyo/api/data-privacy-deletion-jobs", self.klaviyo_delete, methods=["POST"]),
                Route("/mailchimp/3.0/search-members", self.mailchimp_search),
                Route(
                    "/mailchimp/3.0/lists/{list_id}/members/{member}/actions/delete-permanent",
                    self.mailchimp_purge,
                    methods=["POST"],
                ),
            ]
        )


def _too_many(retry_after: float) -> Response:
    return JSONResponse(
        {"errors": [{"status": 429, "code": "throttled", "detail": "Request was throttled."}]},
        status_code=429,
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ProviderServer:
    """Serve `FakeProviders` on 127.0.0.1 in a background thread (its own event loop)."""

    def __init__(self, providers: FakeProviders) -> None:
        self.providers = providers
        self.port = free_port()
        config = uvicorn.Config(
            providers.app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProviderServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake provider server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    """Serve the fakes in their own process (the benchmark), so their clock is not disturbed by
    the load on the process under test: `python -m tests.fakes.providers PORT LATENCY SCALE`."""
    port, latency, scale = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    providers = FakeProviders(latency=latency, scale=scale)
    uvicorn.run(providers.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
