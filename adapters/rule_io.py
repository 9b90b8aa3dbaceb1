"""Rule.io (Sweden): subscribers found by e-mail, deleted for good.

API: https://app.rule.io/api/v2 (look-up) and /api/v3 (delete), `Authorization: Bearer <key>`
(rulecom/rule-io-sdk). Rule.io blocks a client whose error rate reaches 49 %, so nothing but 429
and gateway errors is retried, and a 404 is never provoked twice: the subscriber is looked up
first and a 404 on delete counts as already absent.

No retention sweep (`can_sweep` stays off): the v2 subscriber list says `suppressed` but not since
when, and the v3 suppressions can only be created and deleted, not listed (rule-io-sdk). Erase
needs no address: the holding names the subscriber id.

Reduce (a subscriber the retention rule keeps as a suppression entry): the subscriber is looked up
by id on v2 (a 404 is already absent, and no suppression is sent for nobody), then suppressed on
v3 `POST /suppressions/` by id without `message_types`, which suppresses every marketing channel
(rule-io-sdk suppressions.types.ts); already-suppressed subscribers are skipped, so it repeats
safely. The suppression is processed asynchronously. Never deleted: Rule.io documents neither a
call that clears a subscriber's fields nor that a suppression outlives deleting the subscriber, so
the fields stay and the result names them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import Field, SecretStr

from adapters._rest import ApiAdapter
from adapters.base import Outcome, PermanentFailure, ProviderConfig, Result, suppressed_only
from adapters.http import Endpoints, RateLimit
from adapters.recipients import NO_TRANSFER_LIST, Recipient
from plugin.holdings import Category, Holding, Subject


class RuleIoConfig(ProviderConfig):
    api_key: SecretStr = Field(description="Rule.io API key (Settings → Developer → API keys).")
    endpoints = Endpoints(production="https://app.rule.io/api")


class RuleIo(ApiAdapter[RuleIoConfig]):
    name = "rule_io"
    title = "Rule.io"
    category = Category.NEWSLETTER
    description = "Finds the subscriber by e-mail and deletes it (synchronous); reduce suppresses it."
    can_reduce = True
    recipient = Recipient(
        "Rule Communication – Nordic AB",
        "SE",
        ("https://rule.io/rule-data-processing-agreement", NO_TRANSFER_LIST),
        unconfirmed=("transfers",),
    )
    # No published request quota; 4xx answers count towards the 49 % error-rate block.
    rate_limits = (RateLimit(10, 1.0),)
    retry_statuses = frozenset({429, 502, 503, 504})

    def headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "Authorization": f"Bearer {self._secret()}"}

    async def check_api(self) -> None:
        await self.call("GET", "/v2/subscribers?limit=1", absent=())

    async def _subscriber(self, subject: Subject) -> dict[str, Any] | None:
        if not subject.email:
            return None
        body = await self.call_json(
            "GET", f"/v2/subscribers/{quote(subject.email, safe='')}?identified_by=email"
        )
        return body.get("subscriber") if body else None

    async def find(self, subject: Subject) -> list[Holding]:
        found = await self._subscriber(subject)
        if not found:
            return []
        return [Holding(self.name, Category.NEWSLETTER, f"subscriber:{found['id']}", "Rule.io subscriber")]

    async def erase(self, subject: Subject, holding: Holding) -> Result:
        subscriber_id = holding.ref.removeprefix("subscriber:")
        # By id, so that no e-mail address travels in a URL.
        done = await self.call("DELETE", f"/v3/subscribers/{subscriber_id}?identified_by=id")
        return Result(Outcome.ERASED if done else Outcome.ALREADY_ABSENT, provider_ref=subscriber_id)

    async def reduce(self, subject: Subject, holding: Holding, fields: tuple[str, ...]) -> Result:
        subscriber_id = holding.ref.removeprefix("subscriber:")
        if not subscriber_id.isdigit():
            raise PermanentFailure(self.name, f"not a Rule.io subscriber holding: {holding.ref}")
        if await self.call("GET", f"/v2/subscribers/{subscriber_id}?identified_by=id") is None:
            return Result(Outcome.ALREADY_ABSENT, provider_ref=subscriber_id)
        await self.call("POST", "/v3/suppressions/", json={"subscribers": [{"id": int(subscriber_id)}]})
        why = "Rule.io documents no call that clears them, nor that a suppression survives deletion"
        return suppressed_only(fields, subscriber_id, "suppressed for all marketing in Rule.io", why)

    async def export(self, subject: Subject) -> dict[str, Any]:
        found = await self._subscriber(subject)
        return {"subscriber": found} if found else {}
