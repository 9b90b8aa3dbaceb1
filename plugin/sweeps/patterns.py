"""Orders (and customers) of the same shape get the same verdicts: counted without re-planning.

A shop's orders differ in ids, names and tracking numbers, which only name holdings; what decides
their fate is their *shape* (`adapters.shopify_holdings.order_shape` / `customer_shape`), from which
their holdings are built. For an order whose holdings are all kept or undecided (most of a shop,
on most days), the sweep only needs the counts. So the first order of a shape goes through the
planner as usual, and later orders of that shape are counted by its verdicts. An order with
anything to do always takes the full path, since its steps need the real holding references (and
the ledger is asked whether they were done before), except in a dry run with nothing in the ledger
yet (a new shop's first sweep), which only counts.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import date

# Per holding of an order, in `order_holdings` order: (category, outcome, undecided reason, keep-until);
# for erase/reduce (only learnt when a dry run merely counts) the system in place of the reason.
Verdict = tuple[str, str, str | None, date | None]
Pattern = tuple[Verdict, ...]
Signature = Hashable  # a record's shape


class OrderPatterns:
    """The verdict patterns of one sweep (one shop, one policy, one day, one set of connections)."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self.known: dict[Signature, Pattern] = {}
        self.reused = 0  # records counted by a pattern

    def learn(self, signature: Signature, pattern: Pattern | None) -> None:
        """Record the verdicts of a record that took the full path (None: it had something to do,
        so records of its shape are never counted by pattern)."""
        if pattern is None or signature in self.known:
            return
        if len(self.known) >= self.max_entries:
            # Orders come by date, so old shapes are rarely met again: start afresh rather than
            # let the memory grow with the shop.
            self.known.clear()
        self.known[signature] = pattern
