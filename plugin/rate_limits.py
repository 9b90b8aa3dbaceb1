"""Provider rate limits shared by every process on one database (`gallra serve` instances and
`gallra worker` processes), so together they stay within what a provider allows one credential.

Windows: a table of recent calls per key (provider, credential fingerprint, limit scope). `acquire`
is one short transaction serialised per key (a PostgreSQL advisory lock; SQLite's single writer)
that finds, for every window that applies, the call that would be one too many in it (the
`requests`-th latest inside the window), and either records the call or returns how long until
that call leaves its window; the caller sleeps outside the transaction and tries again. Exact
sliding windows, like `adapters.http.RateLimiter`: a fixed-window counter would let twice a limit
through at a window's edge. On PostgreSQL the database's clock is used, so instances on different
machines agree on it; SQLite is one machine's file, so its processes share the machine's clock.

Concurrency caps (Mailchimp's connections): numbered slots per provider and credential, each held
with a lease that its holder renews while the call runs, so a slot whose process died is free again
when the lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress

from sqlalchemy import ColumnElement, Double, delete, insert, literal, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.http import Limiter, RateLimit
from plugin.db import Database
from plugin.ledger import dialect_of
from plugin.locks import serialise
from plugin.models import RateLimitCall, RateLimitSlot

log = logging.getLogger("gallra.rate_limits")

# Calls older than a key's longest window are deleted on every PRUNE_EVERY-th call of that key in a
# process: often enough that the table stays near the size of the windows, rarely enough that the
# delete is not one more statement on every call.
PRUNE_EVERY = 16
SLOT_LEASE_SECONDS = 30.0
# How often a process waiting for a slot held elsewhere looks again; a slot freed in this process
# wakes its waiter at once.
SLOT_POLL_SECONDS = 0.05


def _clock(session: AsyncSession) -> ColumnElement[float]:
    """Now, in epoch seconds: PostgreSQL's clock (the same within one statement), else this
    machine's."""
    if dialect_of(session) == "postgresql":
        return literal_column("CAST(extract(epoch FROM statement_timestamp()) AS double precision)", Double)
    return literal(time.time(), Double)


class SharedRateLimiter(Limiter):
    """`adapters.http.Limiter` whose windows and slots live in the database at `url`.

    It has its own engine: callers often hold one of the app's pooled connections while they call a
    provider (gathering a request's holdings), and a full pool must not leave the limiter without
    the connection that lets them go on."""

    def __init__(
        self,
        url: str,
        *,
        margin: float = 0.0,
        margin_ratio: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        lease_seconds: float = SLOT_LEASE_SECONDS,
        poll_seconds: float = SLOT_POLL_SECONDS,
    ) -> None:
        super().__init__(sleep, margin, margin_ratio)
        self.db = Database(url)
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._calls: dict[str, int] = {}
        # In front of the database, so a process's callers wait here instead of all polling it.
        self._pools: dict[str, asyncio.Semaphore] = {}
        self._claiming: dict[str, asyncio.Lock] = {}
        self._freed: dict[str, asyncio.Event] = {}
        self._renewals: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self.db.dispose()

    # ----- windows ----------------------------------------------------------------------------------

    async def try_record(self, provider: str, credential: str, limits: list[RateLimit]) -> float:
        windows = [(f"{provider}|{credential}|{limit.scope}", limit, self.window(limit)) for limit in limits]
        keys = sorted({key for key, _limit, _window in windows})
        async with self.db.transaction() as session:
            # Keys in one order everywhere, so two callers sharing an "all" key cannot deadlock.
            for key in keys:
                await serialise(session, f"rate:{key}")
            now_expr = _clock(session)
            blockers = [
                select(RateLimitCall.at)
                .where(RateLimitCall.key == key, RateLimitCall.at > now_expr - window)
                .order_by(RateLimitCall.at.desc())
                .offset(limit.requests - 1)
                .limit(1)
                .scalar_subquery()
                for key, limit, window in windows
            ]
            row = (await session.execute(select(now_expr, *blockers))).one()
            now: float = row[0]
            wait = max(
                (
                    blocker + window - now
                    for blocker, (_key, _limit, window) in zip(row[1:], windows, strict=True)
                    if blocker is not None
                ),
                default=0.0,
            )
            if wait > 0:
                return wait
            await session.execute(insert(RateLimitCall), [{"key": key, "at": now} for key in keys])
            for key in keys:
                self._calls[key] = self._calls.get(key, 0) + 1
                if self._calls[key] % PRUNE_EVERY == 0:
                    longest = max(w for k, _limit, w in windows if k == key)
                    await session.execute(
                        delete(RateLimitCall).where(
                            RateLimitCall.key == key, RateLimitCall.at <= now - longest
                        )
                    )
        return 0.0

    # ----- concurrency caps -----------------------------------------------------------------------

    def pool(self, provider: str, credential: str, size: int) -> AbstractAsyncContextManager[None]:
        return self._slot(f"{provider}|{credential}", size)

    @asynccontextmanager
    async def _slot(self, key: str, size: int) -> AsyncIterator[None]:
        async with self._pools.setdefault(key, asyncio.Semaphore(size)):
            slot, holder = await self._wait_for_slot(key, size)
            renewal = asyncio.create_task(self._renew(key, slot, holder))
            self._renewals.add(renewal)
            renewal.add_done_callback(self._renewals.discard)
            try:
                yield
            finally:
                renewal.cancel()
                await self._release(key, slot, holder)
                self._freed.setdefault(key, asyncio.Event()).set()

    async def _wait_for_slot(self, key: str, size: int) -> tuple[int, str]:
        freed = self._freed.setdefault(key, asyncio.Event())
        async with self._claiming.setdefault(key, asyncio.Lock()):
            while True:
                freed.clear()
                claimed = await self._claim_or_give_back(key, size)
                if claimed is not None:
                    return claimed
                with suppress(TimeoutError):
                    await asyncio.wait_for(freed.wait(), self._poll * random.uniform(0.5, 1.5))

    async def _claim_or_give_back(self, key: str, size: int) -> tuple[int, str] | None:
        """`claim_slot`, run to its end even if the caller is cancelled meanwhile (a timeout, a
        shutdown): a claim that committed is then given back at once. Otherwise its row would hold
        the slot, renewed by nobody, for a whole lease."""
        claim = asyncio.ensure_future(self.claim_slot(key, size))
        try:
            return await asyncio.shield(claim)
        except asyncio.CancelledError:
            with suppress(Exception):
                claimed = await claim
                if claimed is not None:
                    await self._release(key, *claimed)
            raise

    async def claim_slot(self, key: str, size: int) -> tuple[int, str] | None:
        """A free slot (none held, or its lease ended) claimed for a new holder, or None."""
        holder = uuid.uuid4().hex
        async with self.db.transaction() as session:
            await serialise(session, f"slots:{key}")
            now_expr = _clock(session)
            now = (await session.execute(select(now_expr))).scalar_one()
            rows = (
                await session.execute(
                    select(RateLimitSlot.slot, RateLimitSlot.expires_at).where(RateLimitSlot.key == key)
                )
            ).all()
            held = {slot for slot, expires_at in rows if expires_at > now}
            if len(held) >= size:
                return None
            slot = next(i for i in range(size) if i not in held)
            await session.execute(
                delete(RateLimitSlot).where(RateLimitSlot.key == key, RateLimitSlot.slot == slot)
            )
            await session.execute(
                insert(RateLimitSlot).values(key=key, slot=slot, holder=holder, expires_at=now + self._lease)
            )
        return slot, holder

    async def _renew(self, key: str, slot: int, holder: str) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                async with self.db.transaction() as session:
                    await session.execute(
                        update(RateLimitSlot)
                        .where(
                            RateLimitSlot.key == key,
                            RateLimitSlot.slot == slot,
                            RateLimitSlot.holder == holder,
                        )
                        .values(expires_at=_clock(session) + self._lease)
                    )
            except Exception as exc:  # the call goes on; the lease may lapse and the slot be shared
                log.warning("renewing a %s connection slot failed: %s", key.split("|")[0], type(exc).__name__)

    async def _release(self, key: str, slot: int, holder: str) -> None:
        try:
            async with self.db.transaction() as session:
                await session.execute(
                    delete(RateLimitSlot).where(
                        RateLimitSlot.key == key, RateLimitSlot.slot == slot, RateLimitSlot.holder == holder
                    )
                )
        except Exception as exc:  # the call itself is over and stands; the lease frees the slot later
            log.warning("releasing a %s connection slot failed: %s", key.split("|")[0], type(exc).__name__)
