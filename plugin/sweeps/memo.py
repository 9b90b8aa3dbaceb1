"""Planning a million holdings once per distinct set of dates.

The planner is pure: a holding's decision depends on its category, its dates and its flags, never
on its reference or label (`plugin.retention.planner._decide`). A shop's orders share a few
thousand dates, so a sweep asks the planner once per distinct (category, dates, flags) and hands
every holding with the same signature the same verdict. The verdict returned at position i is
about holding i, though the decision object may name another holding with the same signature: the
runner re-targets (`with_holding`) only the few it queues. Exactly what planning each holding
would give; only the repeated work goes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date
from typing import Any

from plugin.holdings import Holding
from plugin.sweeps.parts import Decision, Planner

Signature = tuple[Any, ...]


def signature(h: Holding) -> Signature:
    return (h.category, h.order_created, h.delivered, h.last_activity, h.unsubscribed, h.flags)


def with_holding(decision: Decision, holding: Holding) -> Decision:
    """The same verdict about another holding (NamedTuple or dataclass decisions alike)."""
    fields = getattr(decision, "_fields", None)
    if fields and fields[0] == "holding" and isinstance(decision, tuple):
        # A NamedTuple with the holding first: a new tuple with the rest shared (NamedTuple's
        # own `_replace` costs several times more, and this runs for every queued holding).
        moved: Decision = tuple.__new__(type(decision), (holding, *decision[1:]))
        return moved
    if dataclasses.is_dataclass(decision) and not isinstance(decision, type):
        copied: Decision = dataclasses.replace(decision, holding=holding)
        return copied
    raise TypeError(f"cannot re-target a {type(decision).__name__}")


class MemoPlanner:
    """Wraps a planner for one sweep (one policy, one day). The cache is cleared when the day
    changes and is bounded, so a shop with unusually many distinct dates costs memory, not bugs."""

    def __init__(self, plan: Planner, max_entries: int = 200_000) -> None:
        self.plan = plan
        self.max_entries = max_entries
        self.cache: dict[Signature, Decision] = {}
        self.day: date | None = None
        self.asked = 0  # holdings the planner actually saw

    def __call__(self, holdings: Sequence[Holding], today: date) -> list[Decision]:
        if today != self.day or len(self.cache) + len(holdings) > self.max_entries:
            self.cache.clear()
            self.day = today
        cache = self.cache
        keys = [signature(h) for h in holdings]
        missing: dict[Signature, Holding] = {}
        for key, holding in zip(keys, holdings, strict=True):
            if key not in cache and key not in missing:
                missing[key] = holding
        if missing:
            fresh = self.plan(list(missing.values()), today)
            self.asked += len(missing)
            for key, decision in zip(missing, fresh, strict=True):
                cache[key] = decision
        return [cache[key] for key in keys]
