"""A sweep's report: counts per category and per outcome, never personal data.

The tally is kept in the sweep row's `progress` while the sweep runs (so it survives a crash and can
be inspected) and copied to `report` when it ends. It holds integers, category and system names and
dates, nothing that identifies a customer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

# What happened to a holding in a sweep. `actioned_before`: an erase/reduce step for it already
# exists in the ledger (an earlier sweep or a customer's request), so it is not queued again.
OUTCOMES = ("erase", "reduce", "keep", "undecided", "actioned_before")


@dataclass
class CategoryTally:
    seen: int = 0
    erase: int = 0
    reduce: int = 0
    keep: int = 0
    undecided: int = 0
    actioned_before: int = 0
    next_expiry: date | None = None  # earliest keep-until among the kept (and the reduced, kept on)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "erase": self.erase,
            "reduce": self.reduce,
            "keep": self.keep,
            "undecided": self.undecided,
            "actioned_before": self.actioned_before,
            "next_expiry": self.next_expiry.isoformat() if self.next_expiry else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryTally:
        expiry = data.get("next_expiry")
        return cls(
            seen=int(data.get("seen", 0)),
            erase=int(data.get("erase", 0)),
            reduce=int(data.get("reduce", 0)),
            keep=int(data.get("keep", 0)),
            undecided=int(data.get("undecided", 0)),
            actioned_before=int(data.get("actioned_before", 0)),
            next_expiry=date.fromisoformat(expiry) if expiry else None,
        )


@dataclass
class Tally:
    """Counts for the whole sweep. `undecided_reasons` says why (e.g. "date unknown", "no adapter
    for carrier") so the shop owner knows what to fix; `systems` counts queued actions per system."""

    categories: dict[str, CategoryTally] = field(default_factory=dict)
    undecided_reasons: dict[str, int] = field(default_factory=dict)
    systems: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    customers: int = 0
    own_records: int = 0
    tool_records: int = 0  # holdings the shop's connected tools reported (e.g. unsubscribed addresses)
    # Connected tools that could not be read this time (adapter → why, no personal data): the
    # sweep went on without them and the next one asks them again.
    unreadable: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        counts: Counter[tuple[str, str, str | None, str | None]],
        earliest: dict[str, date],
    ) -> None:
        """Fold one batch in: counts by (category, outcome, undecided reason, system) and the
        earliest keep-until per category among the kept and reduced. Cheaper than `count` per
        holding when a batch holds thousands."""
        for (kind, outcome, reason, system), n in counts.items():
            category = str(kind)  # a Category (StrEnum) or its value: stored as the plain name
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown sweep outcome {outcome!r}")
            tally = self.categories.get(category)
            if tally is None:
                tally = self.categories[category] = CategoryTally()
            tally.seen += n
            setattr(tally, outcome, getattr(tally, outcome) + n)
            if outcome == "undecided" and reason:
                self.undecided_reasons[reason] = self.undecided_reasons.get(reason, 0) + n
            if outcome in ("erase", "reduce") and system:
                key = f"{system}:{outcome}"
                self.systems[key] = self.systems.get(key, 0) + n
        for kind, day in earliest.items():
            tally = self.categories[str(kind)]
            if tally.next_expiry is None or day < tally.next_expiry:
                tally.next_expiry = day

    def total(self, outcome: str) -> int:
        return sum(getattr(tally, outcome) for tally in self.categories.values())

    @property
    def holdings(self) -> int:
        return sum(tally.seen for tally in self.categories.values())

    def next_expiry(self) -> date | None:
        dates = [tally.next_expiry for tally in self.categories.values() if tally.next_expiry]
        return min(dates) if dates else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "customers": self.customers,
            "own_records": self.own_records,
            "tool_records": self.tool_records,
            "holdings": self.holdings,
            "categories": {name: self.categories[name].as_dict() for name in sorted(self.categories)},
            "undecided_reasons": dict(sorted(self.undecided_reasons.items())),
            "systems": dict(sorted(self.systems.items())),
            "unreadable": dict(sorted(self.unreadable.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tally:
        return cls(
            categories={
                name: CategoryTally.from_dict(value) for name, value in data.get("categories", {}).items()
            },
            undecided_reasons={k: int(v) for k, v in data.get("undecided_reasons", {}).items()},
            systems={k: int(v) for k, v in data.get("systems", {}).items()},
            orders=int(data.get("orders", 0)),
            customers=int(data.get("customers", 0)),
            own_records=int(data.get("own_records", 0)),
            tool_records=int(data.get("tool_records", 0)),
            unreadable={str(k): str(v) for k, v in data.get("unreadable", {}).items()},
        )


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report as plain lines for the CLI and logs (counts only)."""
    tally = Tally.from_dict(report.get("tally", {}))
    mode = "dry run (nothing sent)" if report.get("dry_run") else "live"
    lines = [
        f"Sweep of {report.get('shop')} for {report.get('day')}: {mode}, status {report.get('status')}",
    ]
    if report.get("note"):
        lines.append(f"  note: {report['note']}")
    lines.append(
        f"  read {tally.orders} orders, {tally.customers} customers, {tally.tool_records} records of"
        f" connected tools, {tally.own_records} Gallra records -> {tally.holdings} holdings"
    )
    erase, reduce = ("would erase", "would reduce") if report.get("dry_run") else ("erase", "reduce")
    header = f"  {'category':<18} {'seen':>9} {erase:>12} {reduce:>12} {'keep':>9} {'undecided':>9}"
    header += f" {'done before':>11}  next expiry"
    lines.append(header)
    for name in sorted(tally.categories):
        t = tally.categories[name]
        lines.append(
            f"  {name:<18} {t.seen:>9} {t.erase:>12} {t.reduce:>12} {t.keep:>9} {t.undecided:>9}"
            f" {t.actioned_before:>11}  {t.next_expiry.isoformat() if t.next_expiry else '-'}"
        )
    expiry = tally.next_expiry()
    lines.append(
        f"  total: erase {tally.total('erase')}, reduce {tally.total('reduce')}, keep {tally.total('keep')}"
        f" (earliest next expiry {expiry.isoformat() if expiry else '-'}),"
        f" undecided {tally.total('undecided')}, actioned before {tally.total('actioned_before')}"
    )
    for reason, count in sorted(tally.undecided_reasons.items()):
        lines.append(f"  undecided: {count} x {reason}")
    for adapter, reason in sorted(tally.unreadable.items()):
        lines.append(f"  could not read {adapter}: {reason} (asked again on the next sweep)")
    for system, count in sorted(tally.systems.items()):
        lines.append(f"  {'would queue' if report.get('dry_run') else 'queued'} at {system}: {count}")
    if report.get("request_id"):
        lines.append(f"  ledger request #{report['request_id']} carries the steps")
    return lines
