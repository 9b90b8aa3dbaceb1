"""Date arithmetic for retention periods: calendar periods, fiscal-year ends, the shop's local date.

A period that lands on a day the target month lacks (29 February plus one year, 31 August plus six
months) ends on that month's last day, as statutory time reckoning does (e.g. BGB § 188 (3); the
Swedish lag (1930:173) om beräkning av lagstadgad tid counts the same way).
"""

from __future__ import annotations

from calendar import monthrange
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=65536)
def add_period(start: date, years: int = 0, months: int = 0, days: int = 0) -> date:
    """`start` plus a calendar period, clamping to the month's end; saturates at `date.max`."""
    target = _shifted_month(start, years, months)
    if target is None:
        return date.max
    year, month = target
    return _plus_days(date(year, month, min(start.day, monthrange(year, month)[1])), days)


@lru_cache(maxsize=65536)
def add_period_to_month_end(start: date, years: int = 0, months: int = 0, days: int = 0) -> date:
    """Like `add_period`, but landing on the last day of the target month (then adding days)."""
    target = _shifted_month(start, years, months)
    if target is None:
        return date.max
    return _plus_days(last_day_of_month(*target), days)


def _shifted_month(start: date, years: int, months: int) -> tuple[int, int] | None:
    """(year, month) `years` and `months` after `start`'s month; None past `date.max`."""
    year, month0 = divmod(start.year * 12 + (start.month - 1) + years * 12 + months, 12)
    return None if year > date.max.year else (year, month0 + 1)


def _plus_days(end: date, days: int) -> date:
    try:
        return end + timedelta(days=days) if days else end
    except OverflowError:
        return date.max


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, monthrange(year, month)[1])


@lru_cache(maxsize=65536)
def fiscal_year_end(moment: date, month: int, day: int) -> date:
    """The last day of the fiscal year that `moment` falls in, for fiscal years ending on month-day.

    A fiscal year ending in February ends on the last day of February in leap years too, whether the
    shop wrote 02-28 or 02-29: a Nordic räkenskapsår runs whole calendar months.
    """

    def end_in(year: int) -> date:
        if month == 2 and day >= 28:
            return last_day_of_month(year, 2)
        return date(year, month, day)

    this_year = end_in(moment.year)
    if moment <= this_year:
        return this_year
    if moment.year == date.max.year:
        return date.max
    return end_in(moment.year + 1)


def end_of_year(year: int) -> date:
    return date(year, 12, 31)


def parse_month_day(text: str) -> tuple[int, int]:
    """ "MM-DD" → (month, day); any real day of a leap year is accepted. Raises ValueError."""
    parts = text.strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"expected MM-DD, got {text!r}")
    month, day = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12 or not 1 <= day <= monthrange(2024, month)[1]:
        raise ValueError(f"{text!r} is not a day of the year")
    return month, day


def format_month_day(value: tuple[int, int]) -> str:
    return f"{value[0]:02d}-{value[1]:02d}"


def _zone(timezone: str | None) -> ZoneInfo | None:
    if not timezone:
        return None
    # Shopify's REST shop resource writes "(GMT+01:00) Europe/Stockholm"; the IANA name is the tail.
    name = timezone.rsplit(") ", 1)[-1].strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None


def local_date(moment: datetime, timezone: str | None) -> date:
    """The calendar date of `moment` in the shop's time zone (UTC when the shop has none).

    Retention counts calendar days where the shop is: an order placed at 23:30 UTC on 31 December
    is a January order in Stockholm, and falls in the next fiscal year. A naive datetime is taken
    as UTC, the convention for every stored time in Gallra.
    """
    return day_in(moment, shop_zone(timezone))


def shop_zone(timezone: str | None) -> tzinfo:
    """The shop's time zone (UTC when it has none), for `day_in`: resolved once per shop."""
    return _zone(timezone) or UTC


def day_in(moment: datetime, zone: tzinfo) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()
