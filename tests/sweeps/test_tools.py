"""Connected tools are read one by one: a tool that fails is reported and asked again the next day,
and the other tools are still swept."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from typing import cast

from adapters.base import Adapter, AuthFailed, TemporaryFailure
from plugin.holdings import Category, Holding
from plugin.runtime import Runtime
from plugin.sweeps.parts import ToolRecord
from plugin.sweeps.report import summary_lines
from plugin.sweeps.run import run_sweep
from plugin.sweeps.wiring import tool_holdings
from tests.sweeps.shopdata import NOW, SHOP
from tests.sweeps.test_edges import add_shop, parts


def profile(system: str, ref: str, unsubscribed: date) -> Holding:
    return Holding(system, Category.NEWSLETTER, ref, f"{system} {ref}", unsubscribed=unsubscribed)


class FakeTool:
    """Stands in for a newsletter adapter offering `sweep_holdings()`; `failure`, when set, is
    raised after the first profile (as a provider answering 5xx half-way through its listing)."""

    can_sweep = True

    def __init__(self, name: str, held: Sequence[Holding], failure: Exception | None = None) -> None:
        self.name = name
        self.held = held
        self.failure = failure
        self.listed = 0

    async def sweep_holdings(self) -> AsyncIterator[Holding]:
        self.listed += 1
        for index, holding in enumerate(self.held):
            if self.failure is not None and index == 1:
                raise self.failure
            yield holding


async def test_one_failing_tool_does_not_stop_the_others(runtime: Runtime) -> None:
    await add_shop(runtime, "klaviyo", "mailchimp")
    long_ago = date(2022, 6, 1)  # past the suppression entry's three years: erased
    failing = FakeTool(
        "klaviyo",
        [profile("klaviyo", "profile:A", long_ago), profile("klaviyo", "profile:B", long_ago)],
        # The message quotes a person, as a provider's error might: it must not reach the report.
        TemporaryFailure("klaviyo", "HTTP 503 for jane@example.com after 5 tries"),
    )
    working = FakeTool("mailchimp", [profile("mailchimp", "member:1", long_ago)])
    sweep_parts, enqueuer = parts()

    def tools() -> AsyncIterator[ToolRecord]:
        return tool_holdings(cast(list[Adapter], [failing, working]))

    report = await run_sweep(runtime, SHOP, now=NOW, parts=dataclasses.replace(sweep_parts, tools=tools))

    assert report["status"] == "done"
    # What the failing tool listed before it failed is swept, and so is everything of the other.
    assert set(enqueuer.queued) == {("klaviyo", "erase", "profile:A"), ("mailchimp", "erase", "member:1")}
    assert report["tally"]["tool_records"] == 2
    assert report["tally"]["unreadable"] == {"klaviyo": "it kept failing after retries (TemporaryFailure)"}
    lines = "\n".join(summary_lines(report))
    assert "could not read klaviyo: it kept failing after retries (TemporaryFailure)" in lines
    assert "jane@example.com" not in repr(report) and "jane@example.com" not in lines

    # The next day the tool answers again: it is asked again and what it holds is swept.
    failing.failure = None
    next_parts, next_enqueuer = parts()
    next_day = await run_sweep(
        runtime,
        SHOP,
        now=NOW + timedelta(days=1),
        parts=dataclasses.replace(next_parts, tools=tools),
    )
    assert failing.listed == 2 and working.listed == 2
    assert next_day["tally"]["unreadable"] == {}
    assert ("klaviyo", "erase", "profile:B") in next_enqueuer.queued
    assert next_day["tally"]["categories"]["newsletter"]["actioned_before"] == 2


async def test_refused_credentials_are_named_as_such(runtime: Runtime) -> None:
    await add_shop(runtime, "klaviyo")
    refused = FakeTool(
        "klaviyo",
        [
            profile("klaviyo", "profile:A", date(2022, 6, 1)),
            profile("klaviyo", "profile:B", date(2022, 6, 1)),
        ],
        AuthFailed("klaviyo", "the API key was refused; set `api_key`"),
    )
    sweep_parts, _ = parts()

    def tools() -> AsyncIterator[ToolRecord]:
        return tool_holdings(cast(list[Adapter], [refused]))

    report = await run_sweep(runtime, SHOP, now=NOW, parts=dataclasses.replace(sweep_parts, tools=tools))
    assert report["tally"]["unreadable"] == {"klaviyo": "its credentials were refused (AuthFailed)"}
