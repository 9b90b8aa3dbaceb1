"""Date arithmetic: leap years, 29 February anchors, fiscal years not ending 31 December, and dates
in the shop's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.retention import Period, local_date
from plugin.retention.dates import add_period, fiscal_year_end, parse_month_day

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
periods = st.builds(Period, st.integers(0, 12), st.integers(0, 40), st.integers(0, 400))


def test_29_february_plus_a_year_ends_on_28_february() -> None:
    # Statutory reckoning: a day the month lacks becomes its last day (BGB § 188 (3)).
    assert add_period(date(2024, 2, 29), years=1) == date(2025, 2, 28)
    assert add_period(date(2024, 2, 29), years=4) == date(2028, 2, 29)
    assert add_period(date(2024, 2, 29), years=3, months=6) == date(2027, 8, 29)


def test_month_ends_clamp_and_days_cross_leap_days() -> None:
    assert add_period(date(2024, 8, 31), months=6) == date(2025, 2, 28)
    assert add_period(date(2023, 8, 31), months=6) == date(2024, 2, 29)
    assert add_period(date(2024, 12, 31), years=3, months=6) == date(2028, 6, 30)
    assert add_period(date(2024, 2, 28), days=1) == date(2024, 2, 29)
    assert add_period(date(2023, 2, 28), days=1) == date(2023, 3, 1)


def test_period_saturates_instead_of_overflowing() -> None:
    assert add_period(date(9995, 1, 1), years=10) == date.max


def test_fiscal_year_end_for_broken_fiscal_years() -> None:
    assert fiscal_year_end(date(2024, 3, 15), 7, 31) == date(2024, 7, 31)
    assert fiscal_year_end(date(2024, 7, 31), 7, 31) == date(2024, 7, 31)
    assert fiscal_year_end(date(2024, 8, 1), 7, 31) == date(2025, 7, 31)
    assert fiscal_year_end(date(2024, 5, 1), 4, 30) == date(2025, 4, 30)
    assert fiscal_year_end(date(2024, 12, 31), 12, 31) == date(2024, 12, 31)


def test_fiscal_year_ending_in_february_ends_on_its_last_day_in_leap_years() -> None:
    for written in ((2, 28), (2, 29)):
        assert fiscal_year_end(date(2024, 2, 29), *written) == date(2024, 2, 29)
        assert fiscal_year_end(date(2024, 3, 1), *written) == date(2025, 2, 28)
        assert fiscal_year_end(date(2027, 3, 1), *written) == date(2028, 2, 29)


def test_month_day_parsing() -> None:
    assert parse_month_day("06-30") == (6, 30)
    assert parse_month_day("02-29") == (2, 29)
    for bad in ("13-01", "04-31", "0630", "6/30", "aa-bb"):
        with pytest.raises(ValueError):
            parse_month_day(bad)


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("7y", Period(7)),
        ("3y6m", Period(3, 6)),
        ("36m", Period(0, 36)),
        ("14d", Period(0, 0, 14)),
        ("0d", Period()),
    ],
)
def test_period_parse_and_format_round_trip(text: str, period: Period) -> None:
    assert Period.parse(text) == period
    assert str(period) == text


@pytest.mark.parametrize("bad", ["", "7", "y", "7w", "-1y", "7y 2m", "m3"])
def test_period_parse_refuses_nonsense(bad: str) -> None:
    with pytest.raises(ValueError, match="expected a period"):
        Period.parse(bad)


def test_period_comparison_over_mixed_units() -> None:
    assert Period(0, 36).never_shorter_than(Period(3))
    assert not Period(0, 0, 1095).never_shorter_than(Period(3))  # 3 years spanning a leap day are 1096 days
    assert Period(0, 0, 1096).never_shorter_than(Period(3))
    assert not Period(6).never_shorter_than(Period(7))


@given(dates, dates, periods)
def test_adding_a_period_keeps_order(a: date, b: date, period: Period) -> None:
    # Later anchors never expire earlier: what makes "moving now later" safe.
    first, second = sorted((a, b))
    assert period.after(first) <= period.after(second)
    assert period.after(first) >= first


@given(dates, st.integers(1, 12), st.integers(1, 31))
def test_fiscal_year_end_is_the_next_matching_day(moment: date, month: int, day: int) -> None:
    if day > [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]:
        return
    end = fiscal_year_end(moment, month, day)
    assert moment <= end < moment + timedelta(days=367)
    assert end.month == month
    if not (month == 2 and day >= 28):
        assert end.day == day


def test_local_date_uses_the_shop_time_zone() -> None:
    late = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    assert local_date(late, "Europe/Stockholm") == date(2025, 1, 1)
    assert local_date(late, None) == date(2024, 12, 31)
    assert local_date(late, "(GMT+01:00) Europe/Stockholm") == date(2025, 1, 1)
    assert local_date(datetime(2024, 12, 31, 23, 30), "Europe/Helsinki") == date(2025, 1, 1)  # naive = UTC
    assert local_date(datetime(2025, 1, 1, 3, 0, tzinfo=UTC), "America/Los_Angeles") == date(2024, 12, 31)


def test_local_date_across_summer_time() -> None:
    # 22:30 UTC is 00:30 next day in Stockholm summer time (UTC+2) but 23:30 in winter (UTC+1).
    assert local_date(datetime(2024, 6, 30, 22, 30, tzinfo=UTC), "Europe/Stockholm") == date(2024, 7, 1)
    assert local_date(datetime(2024, 1, 30, 22, 30, tzinfo=UTC), "Europe/Stockholm") == date(2024, 1, 30)
    other = timezone(timedelta(hours=-5))
    assert local_date(datetime(2024, 7, 31, 20, 0, tzinfo=other), "Europe/Stockholm") == date(2024, 8, 1)


def test_local_date_refuses_unknown_zones() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        local_date(datetime(2024, 1, 1, tzinfo=UTC), "Mars/Olympus")


ZONES = ["Europe/Stockholm", "Europe/Helsinki", "Europe/Oslo", "Europe/Copenhagen", "Europe/Berlin",
         "America/New_York", "Pacific/Auckland"]  # fmt: skip


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)),
    st.sampled_from(ZONES),
)
def test_local_date_is_at_most_a_day_from_the_utc_date(moment: datetime, zone: str) -> None:
    local = local_date(moment, zone)
    assert abs((local - moment.date()).days) <= 1
    # East of Greenwich the shop's day is never earlier; west, never later.
    if zone.startswith(("Europe", "Pacific")):
        assert local >= moment.date()
    else:
        assert local <= moment.date()


def test_periods_from_a_fiscal_year_end_land_on_month_ends() -> None:
    from plugin.retention.dates import add_period_to_month_end

    assert add_period_to_month_end(date(2027, 2, 28), years=5) == date(2032, 2, 29)
    assert add_period_to_month_end(date(2024, 6, 30), years=3, months=6) == date(2027, 12, 31)
    assert add_period_to_month_end(date(2024, 4, 30), years=10) == date(2034, 4, 30)
    assert add_period_to_month_end(date(9990, 12, 31), years=20) == date.max


@given(dates, dates, periods)
def test_month_end_periods_keep_order(a: date, b: date, period: Period) -> None:
    from plugin.retention.dates import add_period_to_month_end, last_day_of_month

    first, second = sorted(last_day_of_month(d.year, d.month) for d in (a, b))
    p = (period.years, period.months, period.days)
    assert add_period_to_month_end(first, *p) <= add_period_to_month_end(second, *p)
    assert add_period_to_month_end(first, *p) >= add_period(first, *p)  # never shorter than plain
