"""Orders (and customers) alike in everything retention reads get the same verdicts: counted
without re-planning.

A shop's orders differ in ids, names and tracking numbers, which only name holdings; what decides
their fate is the order's local date, its delivery dates, its carriers, whether it was cancelled or
has an open dispute or return, and where it went. For an order whose holdings are all kept or
undecided (most of a shop, on most days), the sweep only needs the counts. So the first order with
a given *signature* goes through `order_holdings` and the planner as usual, and later orders with
the same signature reuse its verdicts. An order with anything to do always takes the full path,
since its steps need the real holding references (and the ledger is asked whether they were done
before), except in a dry run with nothing in the ledger yet (a new shop's first sweep), which only
counts.

The signatures mirror what `plugin.shopify.holdings.order_holdings` / `customer_holdings` (and the
sweep's last-order gate for customers) read. To notice if that ever
drifts, every `check_every`-th reuse is recomputed the full way and compared; a mismatch switches
the shortcut off for the rest of the sweep (and is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from adapters.carriers import carrier_adapter
from plugin.shopify.holdings import UNKNOWN_CARRIER
from plugin.shopify.records import CustomerRecord, OrderRecord

log = logging.getLogger("gallra.sweeps")

# Per holding of an order, in `order_holdings` order: (category, outcome, undecided reason, keep-until);
# for erase/reduce (only learnt when a dry run merely counts) the system in place of the reason.
Verdict = tuple[str, str, str | None, date | None]
Pattern = tuple[Verdict, ...]
Signature = tuple[Any, ...]


def order_signature(
    order: OrderRecord, zone: ZoneInfo, carrier_of: Callable[[str | None], str | None] = carrier_adapter
) -> Signature:
    if len(order.fulfillments) == 1:
        # Most orders: a flat tuple, cheaper to build and (looked up once per order) to hash; its
        # length (4 + 2 per tracking number) keeps it apart from the general shape (5) below.
        f = order.fulfillments[0]
        delivered = f.delivered_at
        local = delivered.astimezone(zone).date() if delivered is not None else None
        flat: list[Any] = [
            order.created_at.astimezone(zone).date(),
            local,
            (order.cancelled_at is not None, order.open_dispute, order.open_return),
            order.shipping_country,
        ]
        for t in f.tracking:
            flat += (carrier_of(t.company) or UNKNOWN_CARRIER, t.number is None)
        return tuple(flat)
    latest = None
    fulfillments = []
    for f in order.fulfillments:
        delivered = f.delivered_at
        local = None
        if delivered is not None:
            local = delivered.astimezone(zone).date()
            if latest is None or delivered > latest[0]:
                latest = (delivered, local)
        tracking = f.tracking
        fulfillments.append(
            (local, tuple([(carrier_of(t.company) or UNKNOWN_CARRIER, t.number is None) for t in tracking]))
            if tracking
            else (local,)
        )
    return (
        order.created_at.astimezone(zone).date(),
        latest[1] if latest is not None else None,
        (order.cancelled_at is not None, order.open_dispute, order.open_return),
        order.shipping_country,
        tuple(fulfillments),
    )


def customer_signature(customer: CustomerRecord, zone: ZoneInfo) -> Signature:
    """What `customer_holdings` and the sweep's last-order gate read of a customer."""
    last = customer.last_order_at or customer.updated_at or customer.created_at
    marketing = customer.marketing_updated_at or customer.updated_at
    ordered = customer.last_order_at
    return (
        last.astimezone(zone).date() if last is not None else None,
        bool(customer.number_of_orders),
        customer.email_marketing_state,
        customer.sms_marketing_state,
        marketing.astimezone(zone).date() if marketing is not None else None,
        ordered.astimezone(zone).date() if ordered is not None else None,
    )


class OrderPatterns:
    """The verdict patterns of one sweep (one shop, one policy, one day, one set of connections)."""

    def __init__(self, check_every: int = 211, max_entries: int = 20_000) -> None:
        self.check_every = check_every
        self.max_entries = max_entries
        self.known: dict[Signature, Pattern] = {}
        self.reused = 0
        self.checked = 0
        self.enabled = True

    def reuse(self, signature: Signature) -> Pattern | None:
        """The pattern to count this order by, or None: take the full path (unknown signature,
        or this reuse is one of the spot checks)."""
        if not self.enabled:
            return None
        pattern = self.known.get(signature)
        if pattern is None:
            return None
        self.reused += 1
        if self.reused % self.check_every == 0:
            return None
        return pattern

    def learn(self, signature: Signature, pattern: Pattern | None) -> None:
        """Record the verdicts of an order that took the full path (None: it had something to do,
        so it is never counted by pattern)."""
        if not self.enabled:
            return
        known = self.known.get(signature)
        if known is None:
            if pattern is not None:
                if len(self.known) >= self.max_entries:
                    # Orders come by date, so old signatures are rarely met again: start afresh
                    # rather than let the memory grow with the shop.
                    self.known.clear()
                self.known[signature] = pattern
            return
        self.checked += 1
        if known != pattern:
            self.enabled = False
            self.known.clear()
            log.warning(
                "sweep shortcut disabled: an order's verdicts differ from another with the same "
                "signature (plugin.sweeps.patterns no longer mirrors order_holdings)"
            )
