"""One retention sweep of one shop: stream, plan in `sweep` mode, queue what expired, report.

The shop's orders and customers arrive as a stream (a Shopify bulk operation) and are handled in
batches: each batch's holdings are planned, what expired is queued as steps of the day's sweep
request in the ledger (the executor, adapters and evidence then treat them exactly like a
customer's request), and the batch's counts and stream position are checkpointed in the same
transaction. Memory is one batch plus the counts, whatever the shop's size.

Nothing is done twice:
- a holding that already has an erase/reduce step in the ledger (an earlier day's sweep, or a
  customer's own request) is counted as `actioned_before` and not queued again;
- a crashed sweep is resumed from its last checkpoint by whichever instance claims it next; if the
  re-opened stream does not line up with the checkpoint it restarts from the beginning, and the
  steps already queued today are recognised and not queued again;
- a live sweep that finished today is not run again today.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.gallra import request_holding
from adapters.shopify_holdings import (
    UNKNOWN_CARRIER,
    customer_shape,
    last_order_holding,
    order_shape,
    shaped_customer_holdings,
    shaped_order_holdings,
    shop_date,
)
from plugin import legal_holds
from plugin.crypto import Vault
from plugin.db import Database
from plugin.holdings import GALLRA, SHOPIFY, Holding
from plugin.ledger import NewRequest, find_request_id, get_request, insert_request
from plugin.models import AdapterConnection, LegalHold, Request, Shop, Step
from plugin.retention.dates import shop_zone
from plugin.retention.planner import NO_RULE
from plugin.shopify.records import CustomerRecord, OrderRecord
from plugin.states import RequestStatus
from plugin.sweeps import claim as claims
from plugin.sweeps.parts import Decision, SweepParts, ToolRecord, ToolUnreadable
from plugin.sweeps.patterns import OrderPatterns, Pattern, Signature, Verdict
from plugin.sweeps.report import Tally

log = logging.getLogger("gallra.sweeps")

# Orders per batch: large enough that the per-batch transaction and dedupe query are cheap beside
# planning, small enough that a batch (and a crash's lost work) stays small.
BATCH = 5000
SHOPIFY_ORDER = "Shopify order: no API erases one order (its customer's erasure does)"
# Systems Gallra reaches without an adapter connection of the shop's own.
BUILT_IN_SYSTEMS = frozenset({SHOPIFY, GALLRA})
ACTIONS = ("erase", "reduce")
# References per ledger look-up: one query per batch on both databases (SQLite allows 32,766
# parameters, PostgreSQL 65,535).
LOOKUP_CHUNK = 5000

ProgressCallback = Callable[[dict[str, Any]], None]
T = TypeVar("T")
R = TypeVar("R", OrderRecord, CustomerRecord)


class SweepLost(Exception):
    """Another instance took this sweep over (our lease ran out); this run stops without a report."""


class _Misaligned(Exception):
    """The re-opened stream does not match the checkpoint: restart the sweep from the beginning."""


def instance_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class ShopContext:
    domain: str
    timezone: str | None
    today: date
    dry_run: bool
    connected: frozenset[str]  # enabled adapter connections


class Sweeper:
    """Runs one claimed sweep. Built by `run_sweep`; holds the tally, the position and the request."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        parts: SweepParts,
        shop: ShopContext,
        *,
        sweep_id: int,
        owner: str,
        now: datetime,
        progress: dict[str, Any],
        request_id: int | None,
        on_progress: ProgressCallback | None,
        batch_size: int,
    ) -> None:
        self.db = db
        self.vault = vault
        self.parts = parts
        self.shop = shop
        self.sweep_id = sweep_id
        self.owner = owner
        self.now = now
        # The sweep's clock: `now` plus the time since the sweep began (the real time when `now`
        # is, as in production; a test's fixed `now` moves on consistently).
        started = time.monotonic()
        self.clock: Callable[[], datetime] = lambda: now + timedelta(seconds=time.monotonic() - started)
        self.request_id = request_id
        self.on_progress = on_progress
        self.batch_size = batch_size
        self.position: dict[str, Any] = dict(progress.get("position", {}))
        self.phase: str = progress.get("phase", "orders")
        self.tally = Tally.from_dict(progress.get("tally", {}))
        self.restarts = int(progress.get("restarts", 0))
        self.attempts = int(progress.get("attempts", 1))
        self.ledger_has_actions = True
        self.zone = shop_zone(shop.timezone)
        self.patterns = OrderPatterns()
        self.customer_patterns = OrderPatterns()
        # The shop's active legal holds, read when the run starts: by customer id, by e-mail hash.
        self.holds_by_customer: dict[int, list[LegalHold]] = {}
        self.holds_by_email: dict[str, list[LegalHold]] = {}

    # ---- progress -------------------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "position": self.position,
            "tally": self.tally.as_dict(),
            "restarts": self.restarts,
            "attempts": self.attempts,
            "updated_at": self.clock().isoformat(),
        }

    async def _checkpoint(self, session: AsyncSession) -> None:
        kept = await claims.checkpoint(
            session,
            self.shop.domain,
            self.sweep_id,
            owner=self.owner,
            now=self.clock(),
            progress=self.progress(),
            request_id=self.request_id,
        )
        if not kept:
            raise SweepLost(f"sweep {self.sweep_id} of {self.shop.domain} was taken over")

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())

    # ---- the run --------------------------------------------------------------------------------

    async def run(self) -> None:
        async with self.db.session() as session:
            self.ledger_has_actions = self.request_id is not None or await _has_actions(
                session, self.shop.domain
            )
            for hold in await legal_holds.active_holds(session, self.shop.domain):
                if hold.customer_id is not None:
                    self.holds_by_customer.setdefault(hold.customer_id, []).append(hold)
                for digest in legal_holds.email_hashes(self.vault, hold):
                    self.holds_by_email.setdefault(digest, []).append(hold)
        await self._phases()

    async def _phases(self) -> None:
        while True:
            try:
                if self.phase == "orders":
                    await self._stream("orders", self.parts.orders, self._order_batch)
                    await self._advance("customers")
                if self.phase == "customers":
                    await self._stream("customers", self.parts.customers, self._customer_batch)
                    await self._advance("tools")
                if self.phase == "tools":
                    await self._stream("tools", self.parts.tools, self._tool_batch)
                    await self._advance("own")
                if self.phase == "own":
                    await self._own_records()
                    await self._advance("done")
                return
            except _Misaligned:
                # Resuming needs the stream in the same order as before; when Shopify returns it
                # differently, counting again from zero is the honest answer. Steps already queued
                # today are found in the ledger and not queued twice.
                log.warning("sweep %s: stream changed since the checkpoint; restarting", self.sweep_id)
                self.restarts += 1
                self.phase, self.position, self.tally = "orders", {}, Tally()

    async def _advance(self, phase: str) -> None:
        self.phase = phase
        async with self.db.transaction() as session:
            await self._checkpoint(session)
        self._notify()

    async def _stream(
        self,
        name: str,
        open_stream: Callable[[], AsyncIterator[T]],
        handle: Callable[[AsyncSession, list[T]], Any],
    ) -> None:
        done = int(self.position.get(f"{name}_done", 0))
        last_id = self.position.get(f"last_{name}_key")
        seen = 0
        batch: list[T] = []
        stream = open_stream()
        try:
            async for record in stream:
                seen += 1
                if seen <= done:
                    if seen == done and _key(record) != last_id:
                        raise _Misaligned
                    continue
                batch.append(record)
                if len(batch) >= self.batch_size:
                    await self._commit_batch(name, handle, batch)
                    batch = []
            if seen < done:
                raise _Misaligned
            if batch:
                await self._commit_batch(name, handle, batch)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    async def _commit_batch(
        self, name: str, handle: Callable[[AsyncSession, list[T]], Any], batch: list[T]
    ) -> None:
        async with self.db.transaction() as session:
            await handle(session, batch)
            self.position[f"{name}_done"] = int(self.position.get(f"{name}_done", 0)) + len(batch)
            self.position[f"last_{name}_key"] = _key(batch[-1])
            await self._checkpoint(session)
        self._notify()

    # ---- batches --------------------------------------------------------------------------------

    def _held(self, customer_id: int | None) -> list[LegalHold]:
        """The legal holds on a Shopify customer (a guest order has none by id)."""
        return self.holds_by_customer.get(customer_id, []) if customer_id is not None else []

    def _with_holds(
        self, shapes: list[tuple[Signature, R]], customer_of: Callable[[R], int | None]
    ) -> list[tuple[Signature, R]]:
        """A held customer's records are alike only with each other's: their signature is the
        shape with the holds' ids (so no verdict learnt from a record that is not held is reused)."""
        if not self.holds_by_customer:
            return shapes
        found: list[tuple[Signature, R]] = []
        for shape, record in shapes:
            holds = self._held(customer_of(record))
            found.append(((shape, tuple(h.id for h in holds)), record) if holds else (shape, record))
        return found

    async def _order_batch(self, session: AsyncSession, orders: list[OrderRecord]) -> None:
        zone = self.zone
        shapes: list[tuple[Signature, OrderRecord]] = [(order_shape(order, zone), order) for order in orders]

        def held(signature: Any, order: OrderRecord) -> tuple[list[Holding], Holding | None]:
            holds = self._held(order.customer_id)
            if not holds:
                return shaped_order_holdings(order, signature), None
            return legal_holds.apply(shaped_order_holdings(order, signature[0]), holds), None

        self.tally.orders += len(orders)
        await self._alike(
            session, self._with_holds(shapes, lambda order: order.customer_id), held, self.patterns
        )

    async def _customer_batch(self, session: AsyncSession, customers: list[CustomerRecord]) -> None:
        zone = self.zone
        shapes: list[tuple[Signature, CustomerRecord]] = [
            (customer_shape(customer, zone), customer) for customer in customers
        ]

        def held(signature: Any, customer: CustomerRecord) -> tuple[list[Holding], Holding | None]:
            holds = self._held(customer.id)
            shape = signature[0] if holds else signature
            holdings = shaped_customer_holdings(customer, shape)
            gate = last_order_holding(customer, shape)
            return (legal_holds.apply(holdings, holds) if holds else holdings), gate

        self.tally.customers += len(customers)
        await self._alike(
            session, self._with_holds(shapes, lambda customer: customer.id), held, self.customer_patterns
        )

    async def _alike(
        self,
        session: AsyncSession,
        pairs: list[tuple[Signature, R]],
        held: Callable[[Any, R], tuple[list[Holding], Holding | None]],
        patterns: OrderPatterns,
    ) -> None:
        """Records of one shape (see `patterns`) are counted by the verdicts of the first of them.
        Orders come roughly by date, so alike ones meet within a batch: a shape first met in this
        batch is planned once, and the others of it wait for its verdicts."""
        counts: Counter[tuple[str, str, str | None, str | None]] = Counter()
        earliest: dict[str, date] = {}
        unknown = _count_known(pairs, patterns, counts, earliest)
        first: list[tuple[Signature, R]] = []
        later: list[tuple[Signature, R]] = []
        met: set[Signature] = set()
        for pair in unknown:
            if pair[0] in met:
                later.append(pair)
            else:
                met.add(pair[0])
                first.append(pair)
        await self._full_path(session, first, held, patterns, counts, earliest)
        counts, earliest = Counter(), {}
        rest = _count_known(later, patterns, counts, earliest)
        await self._full_path(session, rest, held, patterns, counts, earliest)

    async def _full_path(
        self,
        session: AsyncSession,
        records: list[tuple[Signature, R]],
        held: Callable[[Any, R], tuple[list[Holding], Holding | None]],
        patterns: OrderPatterns,
        counts: Counter[tuple[str, str, str | None, str | None]],
        earliest: dict[str, date],
    ) -> None:
        """Holdings, plan and steps for these records, with `counts` (records already counted)
        added to the tally; each record's verdicts are learnt for the alike ones to come."""
        holdings: list[Holding] = []
        gates: dict[str, Holding] = {}
        spans: list[tuple[Signature, int, int]] = []
        for signature, record in records:
            start = len(holdings)
            mine, gate = held(signature, record)
            holdings.extend(mine)
            if gate is not None:
                # The gate (a customer's newest order) decides about the customer's account.
                gates[gate.ref.removesuffix(":last_order")] = gate
            spans.append((signature, start, len(holdings)))
        verdicts: list[Verdict | None] = []
        await self._decide(
            session, holdings, gates=gates, counts=counts, earliest=earliest, verdicts=verdicts
        )
        for signature, start, end in spans:
            mine_verdicts = verdicts[start:end]
            patterns.learn(
                signature,
                None if None in mine_verdicts else tuple(v for v in mine_verdicts if v is not None),
            )

    async def _tool_batch(self, session: AsyncSession, records: list[ToolRecord]) -> None:
        holdings: list[Holding] = []
        for record in records:
            if isinstance(record, ToolUnreadable):
                self.tally.unreadable[record.adapter] = record.reason
            else:
                holdings.append(record)
        self.tally.tool_records += len(holdings)
        await self._decide(session, holdings)

    async def _own_records(self) -> None:
        """Gallra's own working data about finished requests (encrypted e-mail/phone kept for the
        certificate): planned like any holding, and purged through the executor's `gallra` system."""
        after = int(self.position.get("last_own_id") or 0)
        while True:
            async with self.db.transaction() as session:
                rows = (
                    await session.execute(
                        select(
                            Request.id,
                            Request.completed_at,
                            Request.received_at,
                            Request.customer_id,
                            Request.email_hash,
                        )
                        .where(
                            Request.shop_domain == self.shop.domain,
                            Request.kind != "sweep",
                            Request.status.in_((RequestStatus.DONE, RequestStatus.FAILED)),
                            (Request.email_enc.is_not(None)) | (Request.phone_enc.is_not(None)),
                            Request.id > after,
                        )
                        .order_by(Request.id)
                        .limit(self.batch_size)
                    )
                ).all()
                if not rows:
                    return
                holdings = [
                    request_holding(
                        row.id,
                        shop_date(row.completed_at or row.received_at, self.shop.timezone),
                        legal_holds.flags_for(
                            [*self._held(row.customer_id), *self.holds_by_email.get(row.email_hash or "", [])]
                        ),
                    )
                    for row in rows
                ]
                self.tally.own_records += len(rows)
                await self._decide(session, holdings)
                after = rows[-1].id
                self.position["last_own_id"] = after
                await self._checkpoint(session)
            self._notify()

    # ---- deciding -------------------------------------------------------------------------------

    async def _decide(
        self,
        session: AsyncSession,
        holdings: Sequence[Holding],
        *,
        gates: dict[str, Holding] | None = None,
        counts: Counter[tuple[str, str, str | None, str | None]] | None = None,
        earliest: dict[str, date] | None = None,
        verdicts: list[Verdict | None] | None = None,
    ) -> None:
        """Plan the holdings, count them, and queue what is to be done. `verdicts`, when given,
        receives each holding's verdict in order (None for one with something to do)."""
        counts = Counter() if counts is None else counts
        earliest = {} if earliest is None else earliest
        actionable = self._classify(holdings, gates or {}, counts, earliest, verdicts)
        if actionable:
            fresh = await self._not_done_before(session, actionable, counts, earliest)
            if fresh and not self.shop.dry_run:
                request = await self._request(session)
                await self.parts.enqueue(session, request, fresh)
        self.tally.add(counts, earliest)

    async def _not_done_before(
        self,
        session: AsyncSession,
        actionable: list[Decision],
        counts: Counter[tuple[str, str, str | None, str | None]],
        earliest: dict[str, date],
    ) -> list[Decision]:
        """The decisions no step in the ledger carries out yet; the others are counted as
        `actioned_before`. Skipped when the ledger had no erase/reduce step for the shop when the
        sweep began (a shop's first live sweep): nothing can have been done before then."""
        earlier = (
            await _existing_actions(session, self.shop.domain, [d.holding for d in actionable])
            if self.ledger_has_actions
            else {}
        )
        fresh: list[Decision] = []
        for decision in actionable:
            holding = decision.holding
            action = str(decision.action)
            category = holding.category
            owner_request = earlier.get((holding.system, holding.ref, action)) if earlier else None
            if owner_request is not None and owner_request != self.request_id:
                counts[(category, "actioned_before", None, None)] += 1
                continue
            counts[(category, action, None, holding.system)] += 1
            until = decision.keep_until
            if until is not None and (category not in earliest or until < earliest[category]):
                earliest[category] = until
            if owner_request is None:
                fresh.append(decision)
        return fresh

    def _classify(
        self,
        holdings: Sequence[Holding],
        gates: dict[str, Holding],
        counts: Counter[tuple[str, str, str | None, str | None]],
        earliest: dict[str, date],
        verdicts: list[Verdict | None] | None = None,
    ) -> list[Decision]:
        """Plan the batch and count what is kept or undecided; return what is to be done."""
        note = verdicts.append if verdicts is not None else None
        counting = self.shop.dry_run and not self.ledger_has_actions
        asked = [*holdings, *gates.values()]
        decisions = self.parts.plan(asked, self.shop.today)
        if len(decisions) != len(asked):
            raise RuntimeError("the planner returned a different number of decisions")
        gate_decisions = {
            h.ref: d for h, d in zip(asked[len(holdings) :], decisions[len(holdings) :], strict=True)
        }
        actionable: list[Decision] = []
        for decision in decisions[: len(holdings)]:
            holding = decision.holding
            category = holding.category
            keep_until = decision.keep_until
            if keep_until is not None and decision.action == "keep":
                # Most holdings of a shop are kept until a known date: counted without more ado.
                counts[(category, "keep", None, None)] += 1
                if category not in earliest or keep_until < earliest[category]:
                    earliest[category] = keep_until
                if note is not None:
                    note((category, "keep", None, keep_until))
                continue
            outcome, reason, keep_until = _outcome(decision)
            if outcome in ACTIONS and holding.ref in gates:
                # An inactive customer is erased at Shopify only once every order of theirs is past
                # bookkeeping: Shopify's erasure also strips the orders' customer details.
                gate = gate_decisions.get(gates[holding.ref].ref)
                gate_outcome, gate_reason, gate_until = _outcome(gate) if gate else ("undecided", None, None)
                if gate_outcome == "undecided" or (gate_outcome != "erase" and gate_until is None):
                    outcome, reason = "undecided", f"last order: {gate_reason or 'date unknown'}"
                elif gate_outcome != "erase":  # kept (or only reduced) for bookkeeping until then
                    outcome, keep_until = "keep", gate_until
            if outcome in ACTIONS:
                blocked = self._unreachable(holding)
                if blocked is None:
                    actionable.append(decision)
                    if note is not None:
                        # A dry run with nothing in the ledger to check against only counts what
                        # it would do, so alike records may be counted by this verdict (with the
                        # system in place of a reason); otherwise each one needs its own holding.
                        note((category, outcome, holding.system, keep_until) if counting else None)
                    continue
                outcome, reason = "undecided", blocked
            counts[(category, outcome, reason, None)] += 1
            if keep_until is not None and (category not in earliest or keep_until < earliest[category]):
                earliest[category] = keep_until
            if note is not None:
                note((category, outcome, reason, keep_until))
        return actionable

    def _unreachable(self, holding: Holding) -> str | None:
        """Why an expired holding cannot be acted on (counted as undecided, shown to the owner)."""
        if holding.system == UNKNOWN_CARRIER:
            return "carrier not recognised"
        if holding.system == SHOPIFY and holding.ref.startswith("order:"):
            # Shopify has no API to erase one order's personal data: its customer data erasure
            # redacts it on all of a customer's orders, which the sweep asks for once the customer
            # is inactive and every order of theirs is past bookkeeping. Guest orders have none.
            return SHOPIFY_ORDER
        if holding.system not in BUILT_IN_SYSTEMS and holding.system not in self.shop.connected:
            return f"no connection for {holding.system}"
        return None

    async def _request(self, session: AsyncSession) -> Request:
        """The day's sweep request in the ledger, created on the first batch with something to do."""
        if self.request_id is None:
            key = f"sweep:{self.shop.today.isoformat()}"
            new = NewRequest(
                kind="sweep", shop_domain=self.shop.domain, business_key=key, received_at=self.now
            )
            # The request names no subject, so the vault encrypts nothing here.
            self.request_id = await insert_request(session, self.vault, new)
            if self.request_id is None:
                self.request_id = await find_request_id(session, self.shop.domain, "sweep", key)
        request = await get_request(session, self.shop.domain, self.request_id or 0)
        if request is None:
            raise RuntimeError(f"sweep request of {self.shop.domain} vanished")
        return request


def _count_known(
    pairs: list[tuple[Signature, R]],
    patterns: OrderPatterns,
    counts: Counter[tuple[str, str, str | None, str | None]],
    earliest: dict[str, date],
) -> list[tuple[Signature, R]]:
    """Count the records whose shape has a known pattern by it (this runs once per order of the
    shop); returns the others, to be planned."""
    known = patterns.known
    hits: dict[int, list[Any]] = {}  # id(pattern) → [pattern, records counted by it]: no re-hashing
    unknown: list[tuple[Signature, R]] = []
    for pair in pairs:
        pattern = known.get(pair[0])
        if pattern is None:
            unknown.append(pair)
            continue
        hit = hits.get(id(pattern))
        if hit is None:
            hits[id(pattern)] = [pattern, 1]
        else:
            hit[1] += 1
    patterns.reused += len(pairs) - len(unknown)
    for pattern, n in hits.values():
        _count(pattern, counts, earliest, n)
    return unknown


def _count(
    pattern: Pattern,
    counts: Counter[tuple[str, str, str | None, str | None]],
    earliest: dict[str, date],
    orders: int = 1,
) -> None:
    for category, outcome, detail, keep_until in pattern:
        # An action's verdict names its system where the others name why they are undecided.
        counts[
            (category, outcome, None, detail) if outcome in ACTIONS else (category, outcome, detail, None)
        ] += orders
        if keep_until is not None and (category not in earliest or keep_until < earliest[category]):
            earliest[category] = keep_until


def _key(record: Any) -> Any:
    """What identifies a streamed record in a checkpoint: a Shopify id, or a tool's holding ref."""
    return getattr(record, "id", None) or getattr(record, "ref", None)


def _outcome(decision: Decision) -> tuple[str, str | None, date | None]:
    """(erase | reduce | keep | undecided, why undecided, keep-until) of one decision."""
    action = str(decision.action)
    if action not in ("erase", "reduce", "keep"):
        return "undecided", f"planner action {action}", None
    if action == "keep" and decision.keep_until is None:
        # The planner keeps what it cannot date ("... kept until the date is known (check)") and
        # what has no rule; the owner must see those, not read them as kept forever. A keep with no
        # end by its nature (still subscribed, a legal hold) is a keep.
        if getattr(decision, "rule_id", None) == NO_RULE:
            return "undecided", "no retention rule for the category", None
        if str(getattr(decision, "reason_en", "")).endswith("(check)"):
            return "undecided", "date unknown", None
    return action, None, decision.keep_until


async def _has_actions(session: AsyncSession, shop_domain: str) -> bool:
    found = await session.execute(
        select(Step.id).where(Step.shop_domain == shop_domain, Step.action.in_(ACTIONS)).limit(1)
    )
    return found.first() is not None


async def _existing_actions(
    session: AsyncSession, shop_domain: str, holdings: Iterable[Holding]
) -> dict[tuple[str, str, str], int]:
    """(system, ref, action) → the request whose step already does it. By action: an order reduced
    years ago must still be erased when its bookkeeping period ends."""
    refs = sorted({h.ref for h in holdings})
    found: dict[tuple[str, str, str], int] = {}
    for start in range(0, len(refs), LOOKUP_CHUNK):
        chunk = refs[start : start + LOOKUP_CHUNK]
        rows = await session.execute(
            select(Step.system, Step.holding_ref, Step.action, Step.request_id).where(
                Step.shop_domain == shop_domain,
                Step.holding_ref.in_(chunk),
                Step.action.in_(ACTIONS),
            )
        )
        for system, ref, action, request_id in rows:
            if ref is not None:
                found.setdefault((system, ref, action), request_id)
    return found


async def shop_context(session: AsyncSession, shop: Shop, *, today: date, dry_run: bool) -> ShopContext:
    connections = (
        await session.execute(
            select(AdapterConnection.adapter).where(
                AdapterConnection.shop_domain == shop.domain, AdapterConnection.enabled.is_(True)
            )
        )
    ).scalars()
    connected = frozenset(connections)
    return ShopContext(
        domain=shop.domain,
        timezone=shop.timezone,
        today=today,
        dry_run=dry_run,
        connected=connected,
    )
