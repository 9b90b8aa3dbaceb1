"""SharedRateLimiter on SQLite and PostgreSQL: exact burst and steady windows, scopes, several
limiters (standing for processes) on one database staying within a limit together, shared
connection slots, and a dead process's slot freed when its lease ends."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.base import RateLimited
from adapters.http import RateLimit
from plugin.db import Database
from plugin.models import RateLimitCall, RateLimitSlot
from plugin.rate_limits import PRUNE_EVERY, SharedRateLimiter

ROOT = Path(__file__).resolve().parents[2]
Maker = Callable[..., SharedRateLimiter]


async def recorded(db: Database, key: str) -> list[float]:
    """The call times the limiter recorded under a key (the database's clock), in order."""
    async with db.session() as session:
        rows = await session.execute(
            select(RateLimitCall.at).where(RateLimitCall.key == key).order_by(RateLimitCall.at)
        )
        return list(rows.scalars())


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most calls any sliding window (t - seconds, t] holds."""
    return max((sum(1 for u in times if t - seconds < u <= t) for t in times), default=0)


@pytest.fixture
async def limiters(db: Database) -> AsyncIterator[Maker]:
    """Makes limiters on the test database, each with its own engine as in its own process."""
    made: list[SharedRateLimiter] = []

    def make(margin: float = 0.0, margin_ratio: float = 0.0) -> SharedRateLimiter:
        made.append(SharedRateLimiter(db.url, margin=margin, margin_ratio=margin_ratio))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.close()


async def test_burst_and_steady_windows_hold_exactly(db: Database, limiters: Maker) -> None:
    """3 per 0.5 s and 5 per 2 s: no window holds more, and no call waits longer than the windows
    require (the 4th goes when the 1st leaves the burst window, the 6th when it leaves the steady)."""
    limiter = limiters()
    limits = (RateLimit(3, 0.5), RateLimit(5, 2.0))
    for _ in range(8):
        await limiter.acquire("klaviyo", "c", limits, "deletion")

    times = await recorded(db, "klaviyo|c|all")
    assert len(times) == 8
    assert most_in_any_window(times, 0.5) == 3
    assert most_in_any_window(times, 2.0) == 5
    start = times[0]
    assert start + 0.5 <= times[3] < start + 0.5 + 0.25
    assert start + 2.0 <= times[5] < start + 2.0 + 0.25


async def test_margins_widen_every_window(db: Database, limiters: Maker) -> None:
    limiter = limiters(margin=0.1, margin_ratio=0.1)
    limits = (RateLimit(1, 0.5),)
    await limiter.acquire("p", "c", limits, "all")
    await limiter.acquire("p", "c", limits, "all")
    first, second = await recorded(db, "p|c|all")
    assert second - first >= 0.5 * 1.1 + 0.1


async def test_named_scopes_count_apart_and_all_counts_every_call(db: Database, limiters: Maker) -> None:
    limiter = limiters()
    limits = (RateLimit(2, 30.0, "all"), RateLimit(1, 30.0, "deletion"))
    await limiter.acquire("k", "c", limits, "deletion")
    with pytest.raises(RateLimited) as raised:  # the deletion window is full
        await limiter.acquire("k", "c", limits, "deletion", max_wait=0.1)
    assert raised.value.retry_after is not None and 29.0 < raised.value.retry_after <= 30.0
    await limiter.acquire("k", "c", limits, "profiles")  # its own scope, and "all" has room
    with pytest.raises(RateLimited):  # "all" now holds two calls
        await limiter.acquire("k", "c", limits, "profiles", max_wait=0.1)
    await limiter.acquire("k", "other-credential", limits, "deletion")  # another shop's key
    await limiter.acquire("other-provider", "c", limits, "deletion")

    assert len(await recorded(db, "k|c|all")) == 2
    assert len(await recorded(db, "k|c|deletion")) == 1
    assert await recorded(db, "k|c|profiles") == []  # no limit of its own: nothing to count


async def test_two_limiters_on_one_database_stay_within_the_limit_together(
    db: Database, limiters: Maker
) -> None:
    """Two limiters on two engines (two processes), twelve concurrent callers each in three scopes
    under one "all" limit (so six callers ask the database at once): every sliding window holds at
    most its limit, counting both limiters' calls, and the pair is not slower than the limits
    allow."""
    pair = [limiters(), limiters()]
    limits = (RateLimit(4, 0.5), RateLimit(10, 2.0))
    started = time.monotonic()

    async def call(limiter: SharedRateLimiter, scope: str) -> None:
        await limiter.acquire("klaviyo", "c", limits, scope)

    scopes = ("profiles", "suppression", "deletion")
    await asyncio.gather(*(call(limiter, scope) for limiter in pair for scope in scopes for _ in range(4)))

    times = await recorded(db, "klaviyo|c|all")
    assert len(times) == 24
    assert most_in_any_window(times, 0.5) == 4
    assert most_in_any_window(times, 2.0) == 10
    # 24 calls at 10 per 2 s: the 21st can go at 4 s at the earliest.
    assert times[20] - times[0] >= 4.0
    assert time.monotonic() - started < 4.0 + 2.5


async def test_old_calls_are_pruned(db: Database, limiters: Maker) -> None:
    limiter = limiters()
    limits = (RateLimit(100, 0.2),)
    for _ in range(PRUNE_EVERY - 1):
        await limiter.acquire("p", "c", limits, "all")
    await asyncio.sleep(0.25)
    await limiter.acquire("p", "c", limits, "all")  # the PRUNE_EVERY-th call deletes the old ones
    assert len(await recorded(db, "p|c|all")) == 1


async def test_connection_slots_are_shared_by_limiters_on_one_database(db: Database, limiters: Maker) -> None:
    pair = [limiters(), limiters()]
    inside = peak = 0

    async def call(limiter: SharedRateLimiter) -> None:
        nonlocal inside, peak
        async with limiter.pool("mailchimp", "c", 3):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    await asyncio.gather(*(call(limiter) for limiter in pair for _ in range(8)))

    assert peak == 3
    async with db.session() as session:
        assert list((await session.execute(select(RateLimitSlot))).scalars()) == []  # all released


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from plugin.rate_limits import SharedRateLimiter

    async def main() -> None:
        limiter = SharedRateLimiter(sys.argv[1], lease_seconds=1.0)
        async with limiter.pool("mailchimp", "c", 1):
            print("held", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def start_holder(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def test_a_dead_holders_slot_is_free_when_its_lease_ends(db: Database, limiters: Maker) -> None:
    """Another process holds the only slot and renews its 1 s lease: nobody else gets the slot
    while it lives (2 s), and once it is killed the slot is free again within the lease."""
    holder = start_holder(db.url)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 60)
        assert line.strip() == b"held", holder.stderr.read().decode() if holder.stderr else ""
        limiter = limiters()

        async def take() -> None:
            async with limiter.pool("mailchimp", "c", 1):
                pass

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(take(), 2.0)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed = time.monotonic()
        await asyncio.wait_for(take(), 5.0)
        assert time.monotonic() - killed <= 1.0 + 0.5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


async def test_a_claim_cancelled_as_it_commits_gives_its_slot_back(
    db: Database, limiters: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller cancelled (a timeout) while its claim commits: the slot it got is given back at
    once, not held for a whole lease by a row that nobody renews."""
    limiter = limiters()
    claimed, go_on = asyncio.Event(), asyncio.Event()
    real_claim = limiter.claim_slot

    async def claim_then_linger(key: str, size: int) -> tuple[int, str] | None:
        got = await real_claim(key, size)
        claimed.set()
        await go_on.wait()  # still finishing the claim when the caller gives up
        return got

    monkeypatch.setattr(limiter, "claim_slot", claim_then_linger)

    async def take() -> None:
        async with limiter.pool("mailchimp", "c", 1):
            pass

    caller = asyncio.create_task(take())
    await claimed.wait()
    async with db.session() as session:
        assert len(list((await session.execute(select(RateLimitSlot))).scalars())) == 1
    caller.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the caller first
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    async with db.session() as session:
        assert list((await session.execute(select(RateLimitSlot))).scalars()) == []
