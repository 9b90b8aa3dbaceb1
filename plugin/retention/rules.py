"""What a retention rule is: a category, a period counted from an anchor, the law behind it, and
what happens when it runs out."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from plugin.holdings import Category
from plugin.i18n import count, translate
from plugin.retention.dates import (
    add_period,
    add_period_to_month_end,
    end_of_year,
    fiscal_year_end,
    last_day_of_month,
)


class Mode(StrEnum):
    REQUEST = "request"  # the customer asked: erase everything no rule holds against the request
    SWEEP = "sweep"  # nobody asked: only what has expired goes


class Action(StrEnum):
    ERASE = "erase"
    KEEP = "keep"
    REDUCE = "reduce"  # remove the listed fields now, keep the record


class Anchor(StrEnum):
    """The moment a period is counted from."""

    ORDER_CREATED = "order_created"
    DELIVERED = "delivered"
    FISCAL_YEAR_END = "fiscal_year_end"  # last day of the fiscal year the order falls in
    # 31 December of the calendar year in which that fiscal year ended (Sweden, Finland's vouchers).
    FISCAL_YEAR_CALENDAR_END = "fiscal_year_calendar_end"
    CALENDAR_YEAR_END = "calendar_year_end"  # 31 December of the order's own year (Germany)
    LAST_ACTIVITY = "last_activity"
    UNSUBSCRIBED = "unsubscribed"  # unsubscribed or bounced
    WHILE_FLAGGED = "while_flagged"  # held for as long as the holding carries the rule's flag


# The Holding attribute each anchor reads; WHILE_FLAGGED reads none.
ANCHOR_FIELD: dict[Anchor, str | None] = {
    Anchor.ORDER_CREATED: "order_created",
    Anchor.DELIVERED: "delivered",
    Anchor.FISCAL_YEAR_END: "order_created",
    Anchor.FISCAL_YEAR_CALENDAR_END: "order_created",
    Anchor.CALENDAR_YEAR_END: "order_created",
    Anchor.LAST_ACTIVITY: "last_activity",
    Anchor.UNSUBSCRIBED: "unsubscribed",
    Anchor.WHILE_FLAGGED: None,
}

_PERIOD = re.compile(r"^(?:(\d{1,3})y)?(?:(\d{1,4})m)?(?:(\d{1,5})d)?$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        """ "7y", "3y6m", "36m", "14d", "0d" → Period. Raises ValueError naming the text."""
        match = _PERIOD.match(text.strip().lower()) if isinstance(text, str) else None
        if not match or not text.strip() or not any(g is not None for g in match.groups()):
            raise ValueError(f"expected a period like '7y', '3y6m', '36m' or '14d', got {text!r}")
        years, months, days = (int(g) if g else 0 for g in match.groups())
        return cls(years, months, days)

    def __str__(self) -> str:
        text = "".join(f"{n}{u}" for n, u in ((self.years, "y"), (self.months, "m"), (self.days, "d")) if n)
        return text or "0d"

    @property
    def is_zero(self) -> bool:
        return not (self.years or self.months or self.days)

    def after(self, start: date) -> date:
        return add_period(start, self.years, self.months, self.days)

    def words(self, lang: str) -> str:
        """ "3 years and 6 months" / "3 år och 6 månader"."""
        parts = [
            count(n, unit, lang)
            for n, unit in zip((self.years, self.months, self.days), ("years", "months", "days"), strict=True)
            if n
        ]
        if len(parts) > 1:
            return ", ".join(parts[:-1]) + f" {translate(lang, 'word.and')} " + parts[-1]
        return parts[0] if parts else ""

    def never_shorter_than(self, other: Period) -> bool:
        """True when this period ends on or after `other` from every start date.

        Mixed units (36m against 1095d) have no fixed order, so both are laid over every day of a
        four-year leap cycle, which covers month ends and 29 February.
        """
        return _never_shorter(self, other)


@functools.lru_cache(maxsize=4096)
def _never_shorter(period: Period, other: Period) -> bool:
    # Cached: a policy check compares the same few periods over and over, at 1,461 days a time.
    if (period.years * 12 + period.months, period.days) == (other.years * 12 + other.months, other.days):
        return True
    start = date(2024, 1, 1).toordinal()
    return all(period.after(d) >= other.after(d) for d in (date.fromordinal(start + i) for i in range(1461)))


@dataclass(frozen=True, slots=True)
class Rule:
    """One retention rule. `period` is counted from `anchor`; the record is kept up to and including
    the day the period ends (`keep_until`) and `at_expiry` applies from the day after."""

    id: str
    category: Category
    period: Period
    anchor: Anchor
    reference: str  # statute and section
    reason_sv: str  # what is kept and why, in plain words; the period is added when rendered
    reason_en: str
    at_expiry: Action = Action.ERASE  # ERASE or REDUCE
    statutory: bool = False  # a statutory minimum: a shorter override must be forced
    # Holds against an erasure request (GDPR art. 17(3)(b) legal obligation, (e) legal claims).
    holds_on_request: bool = False
    reduce_fields: tuple[str, ...] = ()  # for at_expiry=REDUCE: the fields removed then
    flag: str | None = None  # applies only while the holding carries this flag
    # A period that changed by law: before `period_since` the `previous_period` applied.
    previous_period: Period | None = None
    period_since: date | None = None
    preset_period: Period | None = None  # set when a shop override changed `period`
    sources: tuple[str, ...] = ()  # source keys in shared/reference/retention-law.md

    def period_on(self, today: date) -> Period:
        if self.previous_period is not None and self.period_since is not None and today < self.period_since:
            return self.previous_period
        return self.period

    def keep_until(self, anchor_date: date, fye: tuple[int, int], period: Period | None = None) -> date:
        """The last day this rule keeps a holding whose anchor field holds `anchor_date`."""
        period = period or self.period
        anchor = self.anchor
        if anchor is Anchor.FISCAL_YEAR_END:
            start = fiscal_year_end(anchor_date, *fye)
            if start.day == last_day_of_month(start.year, start.month).day:
                # Counted from a fiscal year's end, a period ends at the end of a month too: five
                # years after 28 Feb 2027 is 29 Feb 2032, when that later fiscal year ends.
                return add_period_to_month_end(start, period.years, period.months, period.days)
        elif anchor is Anchor.FISCAL_YEAR_CALENDAR_END:
            start = end_of_year(fiscal_year_end(anchor_date, *fye).year)
        elif anchor is Anchor.CALENDAR_YEAR_END:
            start = end_of_year(anchor_date.year)
        else:
            start = anchor_date
        return period.after(start)
